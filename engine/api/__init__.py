"""The Docker Engine API: the HTTP server (server.py), what routes see
(http.py), the byte streams (streams.py), and routes/ thin over services/."""
