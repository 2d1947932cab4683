"""What a python task may run, and where a plain function runs: pure rules, no I/O."""

from __future__ import annotations

import pytest

from conveyor import builtin
from conveyor.errors import ConfigError, PermanentError
from conveyor.executors.functions import FunctionPolicy, FunctionRef, load_function
from conveyor.registrations import Conveyor


def test_refs_parse_module_and_name() -> None:
    assert FunctionRef.parse("pkg.mod:Cls.method") == FunctionRef("pkg.mod", "Cls.method")
    for bad in ("nocolon", ":name", "mod:", "mod:na me", "mod:a:b", 7, None, "../x:y"):
        with pytest.raises(PermanentError, match="module:name"):
            FunctionRef.parse(bad)


def test_policy_allows_registered_functions_and_listed_modules_only() -> None:
    policy = FunctionPolicy(builtin.app.registrations, ["tests.support.exposed"])
    policy.check(FunctionRef("conveyor.builtin", "echo"))
    policy.check(FunctionRef("tests.support.exposed", "double"))
    for refused in ("subprocess:getoutput", "os:system", "conveyor.builtin:asyncio",
                    "tests.support:exposed"):
        with pytest.raises(PermanentError, match=r"worker\.python_modules"):
            policy.check(FunctionRef.parse(refused))


def test_a_listed_module_exposes_only_what_it_defines() -> None:
    assert load_function(FunctionRef("tests.support.exposed", "double"))(x=2) == {"double": 4}
    with pytest.raises(PermanentError, match="defined in 'subprocess'"):
        load_function(FunctionRef("tests.support.exposed", "getoutput"))
    # A registered task object resolves to its function.
    assert load_function(FunctionRef("conveyor.builtin", "noop")) is builtin.noop.registration.func


def test_isolation_is_checked_at_registration() -> None:
    app = Conveyor()

    def local() -> None: ...

    with pytest.raises(ConfigError, match="define it at module level"):
        app.task("local")(local)
    assert app.task("local_thread", isolation="thread")(local).registration.isolation == "thread"

    async def coroutine() -> None: ...

    with pytest.raises(ConfigError, match="isolation is for plain functions"):
        app.task("co", isolation="process")(coroutine)
    with pytest.raises(ConfigError, match="'process' or 'thread'"):
        app.task("bad", isolation="fork")(local)  # type: ignore[arg-type]
    assert builtin.noop.registration.isolation == "process"
