import logging

from django.http import HttpResponse

log = logging.getLogger("shop.views")


def client_address(request):
    """The client as Caddy resolved it.

    Caddy sets X-Real-IP to its client_ip: the PROXY protocol source or
    the peer, or what trusted proxies reported in X-Forwarded-For, read by
    Caddy's rules (trusted_proxies_strict). X-Forwarded-For itself may
    start with whatever the client wrote; REMOTE_ADDR is Caddy.
    """
    return request.META.get("HTTP_X_REAL_IP") or request.META.get("REMOTE_ADDR", "")


def hello(request):
    name = request.GET.get("name", "world")
    log.info("hello %s from %s", name, client_address(request))
    return HttpResponse("hello %s\n" % name, content_type="text/plain")


def boom(request):
    # An unhandled error: Django answers 500 and logs it on
    # django.request, with the exception.
    return 1 / 0
