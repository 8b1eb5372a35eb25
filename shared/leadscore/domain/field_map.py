"""Form field names to profile fields: forms call the same thing many names.

The defaults cover English and Spanish spellings; operators add their own with
`LEADSCORE_FORM_FIELD_MAP` (a JSON object of alias to field). Names are compared after
folding case, accents, spaces and hyphens, so "Company name", "company-name" and
"COMPANY_NAME" are one name. A field with no mapping is kept under its folded name.
"""

from __future__ import annotations

import functools
import re
import unicodedata

DEFAULT_ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "e_mail", "email_address", "correo", "correo_electronico", "mail"),
    "first_name": ("first_name", "firstname", "fname", "given_name", "nombre"),
    "last_name": ("last_name", "lastname", "lname", "surname", "family_name", "apellido",
                  "apellidos"),
    "name": ("name", "full_name", "your_name", "nombre_completo", "nombre_y_apellidos"),
    "company": ("company", "company_name", "organization", "organisation", "empresa",
                "nombre_de_la_empresa", "organizacion", "compania"),
    "job_title": ("job_title", "jobtitle", "title", "position", "role", "cargo", "puesto",
                  "rol"),
    "seniority": ("seniority", "level", "nivel", "seniority_level", "antiguedad"),
    "industry": ("industry", "sector", "industria", "vertical"),
    "company_size": ("company_size", "employees", "employee_count", "number_of_employees",
                     "team_size", "tamano_empresa", "tamano_de_la_empresa", "empleados",
                     "numero_de_empleados"),
    "company_revenue": ("company_revenue", "revenue", "annual_revenue", "facturacion",
                        "ingresos"),
    "country": ("country", "pais", "country_code"),
    "phone": ("phone", "phone_number", "telephone", "telefono", "movil"),
    "years_experience": ("years_experience", "experience", "years_of_experience",
                         "experiencia", "anos_de_experiencia", "anos_experiencia"),
    "message": ("message", "comments", "mensaje", "comentarios"),
}


def fold(name: str) -> str:
    """Lower case, no accents, words joined by '_'."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")


@functools.cache
def _default_mapping() -> dict[str, str]:
    """The ~90 default aliases, folded once per process, not on every form post (nothing a
    stranger posts is remembered: their field names are folded and forgotten)."""
    return {fold(alias): field for field, aliases in DEFAULT_ALIASES.items()
            for alias in aliases}


def build(extra: dict[str, str] | None = None) -> dict[str, str]:
    """alias (folded) -> profile field, the defaults overridden by `extra`."""
    mapping = dict(_default_mapping())
    mapping.update({fold(alias): fold(field) for alias, field in (extra or {}).items()})
    return mapping


def map_fields(fields: dict[str, str], mapping: dict[str, str]) -> dict[str, str]:
    """Rename fields to profile fields; later duplicates never erase an earlier value."""
    out: dict[str, str] = {}
    for name, value in fields.items():
        key = fold(name)
        target = mapping.get(key, key)
        if target and (target not in out or not out[target]):
            out[target] = value
    return out
