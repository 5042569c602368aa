"""Container networking as dockerd's libnetwork gives it: kernel bridges and
veths (netlink.py, the kernel door), address management (ipam.py), NAT and
isolation rules in an nftables table of the engine's own (firewall.py,
portmap.py), the embedded DNS resolver (dns.py), and the bridge driver that
puts them together (bridge.py). See DESIGN.md in this directory."""
