"""The web console: static pages (HTML, CSS, plain JavaScript modules, no build step) and a small aiohttp
app that serves them and passes the API paths and the push socket through to the three services, so the
browser talks to one origin and no CORS is needed. It imports no service: it talks HTTP like any client."""
