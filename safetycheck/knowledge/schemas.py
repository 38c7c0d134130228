"""Row schemas for the drug-list files: every column typed, unknown columns refused."""

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

AUTHORITIES = ("fda", "label", "protocol", "literature")
SYNONYM_KINDS = ("brand", "international", "abbreviation", "salt", "spelling")
GROUPS = (
    "cyp3a", "cyp1a2", "acid_suppression", "antithrombotic", "corticosteroid",
    "growth_factor", "vaccine", "myeloma", "regimen", "investigational", "antiviral_hz",
)
_required = {"required": True, "validate": validate.Length(min=1)}


class _Row(Schema):
    class Meta:
        unknown = RAISE

    source = fields.String(**_required)


class ClassRow(_Row):
    """data/drug_lists/classes.csv"""

    class_ = fields.String(data_key="class", **_required)
    group = fields.String(required=True, validate=validate.OneOf(GROUPS))
    description = fields.String(**_required)


class MembershipRow(_Row):
    """data/drug_lists/memberships.csv"""

    drug = fields.String(**_required)
    class_ = fields.String(data_key="class", **_required)
    authority = fields.String(required=True, validate=validate.OneOf(AUTHORITIES))
    scope = fields.String(load_default="")
    factor = fields.Float(allow_none=True, load_default=None, validate=validate.Range(min=0, min_inclusive=False))
    note = fields.String(load_default="")

    @validates_schema
    def _scope_fits_authority(self, row, **_):
        if row["authority"] in ("label", "protocol") and not row.get("scope"):
            raise ValidationError(f"a {row['authority']} row needs a scope", "scope")
        if row["authority"] in ("fda", "literature") and row.get("scope"):
            raise ValidationError(f"a {row['authority']} row takes no scope", "scope")


class SynonymRow(_Row):
    """data/drug_lists/synonyms.csv"""

    name = fields.String(**_required)
    generic = fields.String(**_required)
    kind = fields.String(required=True, validate=validate.OneOf(SYNONYM_KINDS))


class CombinationRow(_Row):
    """data/drug_lists/combinations.csv"""

    name = fields.String(**_required)
    ingredients = fields.String(**_required)


class DrugRow(_Row):
    """data/drug_lists/drugs.csv"""

    generic = fields.String(**_required)
    note = fields.String(load_default="")


class LookalikeRow(_Row):
    """data/drug_lists/lookalikes.csv"""

    name_a = fields.String(**_required)
    name_b = fields.String(**_required)


class ClassTermRow(_Row):
    """data/drug_lists/class_terms.csv"""

    name = fields.String(**_required)


DRUG_LIST_FILES = {
    "classes.csv": ClassRow,
    "drugs.csv": DrugRow,
    "synonyms.csv": SynonymRow,
    "combinations.csv": CombinationRow,
    "memberships.csv": MembershipRow,
    "lookalikes.csv": LookalikeRow,
    "class_terms.csv": ClassTermRow,
}
