"""How every page shows a moment: date, time and time zone, in a <time> element a script or
screen reader can read ({{ value|when }}; nothing for no value, so `|default:"never"` works)."""

from datetime import datetime

from django import template
from django.utils import dateformat, timezone
from django.utils.html import format_html

register = template.Library()


@register.filter
def when(value: datetime | None) -> str:
    if not value:
        return ""
    moment = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}">{}</time>',
        moment.isoformat(),
        dateformat.format(moment, "Y-m-d H:i:s T"),
    )
