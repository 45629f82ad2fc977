"""The ledger's SQL as committed: every function, trigger and view in a file of its own under
migrations/sql/ (one folder per rule; its README.md maps each rule to its files).

The files are read here into alembic_utils entities for two users only: `alembic revision
--autogenerate` (migrations/env.py registers them, so that an edited file becomes a migration
that freezes the new text) and the test that a migrated database holds exactly these objects.
Migrations never read the files: each applies the text it froze, so a later edit cannot change
what an old migration does.

A file is header comments (why the object exists) followed by one CREATE statement. Its name is
the object's name. alembic_utils parses the statement with its own templates, which want the
schema spelled out for functions and views; the files leave it to the search path, as every
other statement of the ledger does, and `public.` is added here.
"""

import re
from pathlib import Path

from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger
from alembic_utils.pg_view import PGView
from alembic_utils.replaceable_entity import ReplaceableEntity, register_entities, registry
from alembic_utils.reversible_op import CreateOp, DropOp, ReplaceOp, RevertOp

from mutualcredit.migrate import migrations_dir

SCHEMA = "public"
ENTITY_TYPES: tuple[type[ReplaceableEntity], ...] = (PGFunction, PGTrigger, PGView)

_CREATE = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?P<kind>FUNCTION|TRIGGER|VIEW)\s+(?P<name>\w+)", re.I
)


def sql_dir() -> Path:
    return migrations_dir() / "sql"


def files() -> list[Path]:
    return sorted(sql_dir().rglob("*.sql"))


def statement(path: Path) -> str:
    """The file's CREATE statement, without the header comments above it."""
    lines = path.read_text().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip()


def entity(path: Path) -> ReplaceableEntity:
    """The object a file creates. Its name must be the file's name (the layout is the index)."""
    sql = statement(path)
    match = _CREATE.match(sql)
    if match is None:
        raise ValueError(f"{path}: expected one CREATE FUNCTION, TRIGGER or VIEW statement")
    kind, name = match["kind"].upper(), match["name"]
    if name != path.stem:
        raise ValueError(f"{path}: creates {name}; a file is named after its object")
    qualified = sql[: match.start("name")] + f"{SCHEMA}." + sql[match.start("name") :]
    if kind == "FUNCTION":
        return PGFunction.from_sql(qualified)
    if kind == "VIEW":
        return PGView.from_sql(qualified)
    return PGTrigger.from_sql(sql)


def entities() -> list[ReplaceableEntity]:
    return [entity(path) for path in files()]


def register(registered: list[ReplaceableEntity] | None = None) -> None:
    """Makes autogenerate compare the database with the files (a new, changed or removed file
    becomes create_entity, replace_entity or drop_entity), and write the frozen texts so that
    they read as SQL. The registry is alembic_utils' own (one per process): it is emptied first,
    so that it holds exactly the files (or `registered`, which the tests use)."""
    registry.clear()  # type: ignore[no-untyped-call]  # (untyped in alembic_utils)
    register_entities(
        entities() if registered is None else registered, entity_types=list(ENTITY_TYPES)
    )
    for op in (CreateOp, DropOp, ReplaceOp, RevertOp):
        renderers.dispatch_for(op, replace=True)(_render)


# How a migration names each op of alembic_utils (RevertOp, a downgrade's restore, is a replace).
_OPERATION = {
    CreateOp: "create_entity",
    DropOp: "drop_entity",
    ReplaceOp: "replace_entity",
    RevertOp: "replace_entity",
}


def _render(autogen_context: AutogenContext, op: CreateOp | DropOp | ReplaceOp | RevertOp) -> str:
    """alembic_utils writes a definition as one string literal (a whole function on one line);
    this writes it one source line per literal, so a migration reads (and diffs) as the SQL it
    freezes. RevertOp restores the definition that was live in the database (alembic_utils
    keeps it on the target)."""
    target = op.target
    if isinstance(op, RevertOp):
        assert target._version_to_replace is not None
        target = target._version_to_replace
    autogen_context.imports.add(f"from {type(target).__module__} import {type(target).__name__}")
    variable = target.to_variable_name()
    arguments = [f"schema={target.schema!r}", f"signature={target.signature!r}"]
    if isinstance(target, PGTrigger):
        arguments += [f"on_entity={target.on_entity!r}", f"is_constraint={target.is_constraint}"]
    if isinstance(op, DropOp):
        # A drop needs the signature only (and a trigger its table).
        arguments.append('definition=""')
    else:
        # alembic_utils keeps the text escaped for sqlalchemy.text (a lone colon as `\:`); the
        # constructor escapes it again when the migration runs, so the migration holds it plain.
        definition = target.definition.replace("\\:", ":")
        lines = definition.splitlines(keepends=True)
        literals = "".join(f"\n        {line!r}" for line in lines)
        arguments.append(f"definition=({literals}\n    )")
    body = ",\n    ".join(arguments)
    construct = f"{variable} = {type(target).__name__}(\n    {body},\n)\n"
    return construct + f"op.{_OPERATION[type(op)]}({variable})\n"
