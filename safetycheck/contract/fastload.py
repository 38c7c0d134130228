"""A schema's common shape loaded by plain code that is read off the schema itself (its fields and validators).

`compile_schema(schema)` turns each declared field into a small function that gives exactly what the field
would (a float for a JSON number, the date for an ISO date, nested schemas the same way) and gives up on
anything it does not take as it is: another type (a number as text, 1 for true, null), a missing required
field, an unknown key, a field or validator it does not know, any failed rule. The schema's own `load`
then takes that body, so what is refused, and every error message, is the schema's. The schema stays
the one definition (and the OpenAPI document); this only skips marshmallow's bookkeeping on the way.

Every loader refuses null (a type test), so a field's allow_none never needs reading.
"""

import datetime as dt
import math
from collections.abc import Callable

from marshmallow import RAISE, Schema, fields, validate
from marshmallow.utils import missing

# Hook kinds a compiled schema may not have (a schema-level validator is run as marshmallow runs it).
_UNSUPPORTED_HOOKS = ("pre_load", "post_load", "validates")


class GiveUp(Exception):
    """This body is not one the compiled code takes: the schema loads it."""


class NotCompilable(Exception):
    """The field or schema uses something the compiler does not know."""


def compile_schema(schema: Schema) -> Callable[[object], dict]:
    """A function: body -> what schema.load(body) returns, or GiveUp. NotCompilable if the schema can't be."""
    if schema.many or schema.unknown != RAISE or schema.only or schema.exclude or schema.partial:
        raise NotCompilable(f"{type(schema).__name__}: only a plain schema with unknown=RAISE")
    if any(schema._hooks[kind] for kind in _UNSUPPORTED_HOOKS):
        raise NotCompilable(f"{type(schema).__name__}: has load hooks")
    checks = []
    for name, hook_many, options in schema._hooks["validates_schema"]:
        if hook_many or options.get("pass_original"):
            raise NotCompilable(f"{type(schema).__name__}.{name}: a many or pass_original validator")
        checks.append(getattr(schema, name))
    plan, loaders, required = [], {}, set()  # plan: every field in declared order, as marshmallow fills them
    for name, field in schema.load_fields.items():
        if field.data_key not in (None, name) or field.attribute not in (None, name):
            raise NotCompilable(f"{type(schema).__name__}.{name}: data_key or attribute")
        try:
            loader = loaders[name] = _field(field)
        except NotCompilable:
            loader = None  # a body that gives this field goes to the schema
        if field.required:
            required.add(name)
        plan.append((name, loader, field.load_default))
    known = frozenset(loaders)
    plain = not required and all(default is missing for _, _, default in plan)

    def load(body):
        if type(body) is not dict or not body.keys() <= known:  # unknown, or not compiled
            raise GiveUp
        if plain and len(body) == 1:  # one key and nothing to fill in: no order to keep
            data = {key: loaders[key](value) for key, value in body.items()}
        else:
            if not required <= body.keys():
                raise GiveUp
            data = {}
            for name, loader, default in plan:
                if name in body:
                    data[name] = loader(body[name])
                elif default is not missing:
                    data[name] = default() if callable(default) else default
        for check in checks:
            try:
                check(data, partial=None, many=False, unknown=None)
            except Exception as err:  # noqa: BLE001 - a refusal (or anything else) is the schema's to report
                raise GiveUp from err
        return data

    return load


def _field(field: fields.Field) -> Callable:
    """The loader of one field's value (present, not null): the field's type, then its validators."""
    # A subclass that loads what a plain field does (its own fast path, tested against it) says so.
    kind = getattr(type(field), "loads_as", type(field))
    if kind is fields.String:
        def base(value):
            if type(value) is not str:
                raise GiveUp
            return value
    elif kind is fields.Float:
        allow_nan = field.allow_nan

        def base(value):
            if type(value) is float:
                number = value
            elif type(value) is int:
                try:
                    number = float(value)
                except OverflowError as err:
                    raise GiveUp from err
            else:
                raise GiveUp
            if not allow_nan and not math.isfinite(number):
                raise GiveUp
            return number
    elif kind is fields.Integer:  # an int is itself, strict or not (WholeNumber refuses only bools, fractions)
        def base(value):
            if type(value) is not int:
                raise GiveUp
            return value
    elif kind is fields.Boolean:
        if True not in field.truthy or False not in field.falsy:
            raise NotCompilable("boolean with its own truthy/falsy values")

        def base(value):
            if type(value) is not bool:
                raise GiveUp
            return value
    elif kind is fields.Date:
        if field.format not in (None, "iso", "iso8601"):
            raise NotCompilable("date format")

        def base(value):
            if type(value) is not str or not value:
                raise GiveUp
            try:
                return dt.date.fromisoformat(value)  # what marshmallow's iso Date uses
            except ValueError as err:
                raise GiveUp from err
    elif kind is fields.Nested:
        if field.many or field.only or field.exclude or field.unknown is not None:
            raise NotCompilable("nested options")
        base = compile_schema(field.schema)
    elif kind is fields.List:
        item = _field(field.inner)

        def base(value):
            if type(value) is not list:
                raise GiveUp
            return [item(entry) for entry in value]
    elif kind is fields.Dict:
        keys = _field(field.key_field) if field.key_field is not None else None
        values = _field(field.value_field) if field.value_field is not None else None
        if keys is None or values is None:
            raise NotCompilable("a Dict without key and value fields")

        def base(value):
            if type(value) is not dict:
                raise GiveUp
            return {keys(key): values(item) for key, item in value.items()}
    else:
        raise NotCompilable(f"field type {kind.__name__}")
    rules = [_validator(v) for v in field.validators]
    if not rules:
        return base

    def checked(value):
        value = base(value)
        for rule in rules:
            if not rule(value):
                raise GiveUp
        return value

    return checked


def _validator(rule) -> Callable[[object], bool]:
    """A marshmallow validator as a test that is True where it passes (only the kinds the schemas use)."""
    kind = type(rule)
    if kind is validate.Length:
        low, high, equal = rule.min, rule.max, rule.equal
        if equal is not None:
            return lambda value: len(value) == equal
        return lambda value: (low is None or len(value) >= low) and (high is None or len(value) <= high)
    if kind is validate.Range:
        low, high, low_in, high_in = rule.min, rule.max, rule.min_inclusive, rule.max_inclusive

        def in_range(value):
            if low is not None and (value < low if low_in else value <= low):
                return False
            return not (high is not None and (value > high if high_in else value >= high))
        return in_range
    if kind is validate.OneOf:
        choices = rule.choices
        return lambda value: value in choices
    raise NotCompilable(f"validator {kind.__name__}")


class FastLoad:
    """Schema mixin: load() tries the compiled common shape first, then the schema itself."""

    def load(self, data, *, many=None, partial=None, unknown=None):
        if many is None and partial is None and unknown in (None, RAISE):
            fast = self.__dict__.get("_fast_load")
            if fast is None:
                try:
                    fast = compile_schema(self)
                except NotCompilable:
                    fast = False
                self._fast_load = fast
            if fast:
                try:
                    return fast(data)
                except GiveUp:
                    pass
        return super().load(data, many=many, partial=partial, unknown=unknown)
