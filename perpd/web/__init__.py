"""The live web view (issue 15): pages and their assets, served by the daemon itself.

Every asset ships in this package (``static/``: plain ES modules, CSS, an SVG icon; no
build step, nothing fetched from elsewhere, which the page's Content-Security-Policy
enforces). The pages are one document that routes on its path: ``/`` (the venue),
``/agents/{agent_id}`` and ``/positions/{position_id}``. The last shares its path with
the JSON read ``GET /positions/{id}`` (SPEC §6): a browser's navigation, which prefers
``text/html``, gets the page; any other client (``*/*``, ``application/json``) the JSON
as before. The page reads only the public API and the public stream ``/ws/public``.
"""

from perpd.web._routes import bp

__all__ = ["bp"]
