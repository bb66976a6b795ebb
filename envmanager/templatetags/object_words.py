"""An object type's name inside a sentence, the same on every page: "connection",
"Airflow variable" (Airflow keeps its capital), "environment variables"."""

from django import template

from envmanager.object_types import TYPE_LABELS, ObjectType, type_name

register = template.Library()

# Any way a page holds a type (its code, its label, its tab's label) → the code.
_TYPES = {
    **{t.value: t.value for t in ObjectType},
    **{t.label: t.value for t in ObjectType},
    **{label: t for t, label in TYPE_LABELS.items()},
}


@register.filter
def type_words(value: str, number: str = "one") -> str:
    """`{{ type_label|type_words }}` → "Airflow variable"; `|type_words:"many"` → "Airflow
    variables"."""
    object_type = _TYPES.get(value)
    if object_type is None:
        return value
    name = type_name(object_type)
    return f"{name}s" if number == "many" else name
