"""dingmw: log in with DingTalk in front of any WSGI or ASGI app."""

__version__ = "0.1.0"
