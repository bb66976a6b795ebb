"""`GET /api/v1/lookup/prometheus-config`: the Deployment token's Prometheus agent
configuration (its metrics exports as remote writes), as `envmanager-env prometheus-config`
fetches it. Optional `scrapeTarget` (HOST:PORT of the StatsD bridge) and `scrapeInterval`
(seconds). With an ETag, and 304 for a matching If-None-Match, as the environment document."""

from django.http import HttpRequest, HttpResponse

from accounts.api.authentication import bearer_scheme_token
from envmanager import lookups, metrics_config
from envmanager.api.lookup import HEADERS, Answer, _response, if_none_match, lookup_endpoint
from envmanager.kernel.api import error_body

CONTENT_TYPE = "application/yaml; charset=utf-8"


@lookup_endpoint
def prometheus_config(request: HttpRequest) -> HttpResponse:
    token = lookups.token_for(bearer_scheme_token(request.META.get("HTTP_AUTHORIZATION", "")))
    if token is None:
        return _response(Answer(401, error_body("A valid Deployment token is required.", 401)))
    try:
        scrape = metrics_config.ScrapeSettings.parse(
            request.GET.get("scrapeTarget"), request.GET.get("scrapeInterval")
        )
    except metrics_config.InvalidScrapeSettings as exc:
        return _response(Answer(400, error_body(str(exc), 400)))
    etag = f'"{metrics_config.prometheus_config_version(token.deployment_id, scrape)}"'
    if if_none_match(request.headers.get("If-None-Match", ""), etag):
        response = HttpResponse(status=304)
    else:
        text = metrics_config.deployment_prometheus_config(token.deployment_id, scrape)
        response = HttpResponse(text, content_type=CONTENT_TYPE)
    for name, value in HEADERS:
        response[name] = value
    response["ETag"] = etag
    return response
