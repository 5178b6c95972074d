"""`autotrack ui`: a local, read-only web page over a store (server in `server.py`, the page in
`static/`). Nothing here is imported by `import autotrack`."""
