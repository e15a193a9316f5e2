"""An experiment's options are its fields: the keywords callers pass name the same options
(the typed keywords of ``chaos.experiment`` cannot drift from what an experiment holds),
and every option is checked however the experiment is made."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_chaos.experiment import Experiment, ExperimentOptions


def test_the_keywords_are_the_fields() -> None:
    fields = [field.name for field in dataclasses.fields(Experiment)]
    assert fields[0] == "title"
    assert list(ExperimentOptions.__annotations__) == fields[1:]


def test_made_directly_or_derived_it_is_checked_as_when_built() -> None:
    with pytest.raises(ValueError, match="frequency_s"):
        Experiment("t", frequency_s=0)
    experiment = Experiment.build("t", strategy="before", tags=["a"])
    assert (experiment.strategy, experiment.tags) == ("before-method-only", ("a",))
    with pytest.raises(ValueError, match="tags"):
        dataclasses.replace(experiment, tags=[""])
