"""The built-in `tabular` task plugin: `retrain.tabular.task:TASK`.

River's Agrawal loan applicants (6 numeric, 3 categorical fields; two classes, as River's
classification functions give them), a small MLP with its own training recipe, records
logged as JSON and shown to labelers as a table of fields (Label Studio's HyperText view).
Scenarios: `scenarios/tabular-*.toml` (`task = "tabular"`).
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from retrain.tabular.expectations import default_expectations
from retrain.tabular.model import RECIPE, TabularMLP
from retrain.tabular.schema import (
    INPUT_SCHEMA,
    N_INPUT,
    decode_inputs,
    encode_input,
    feature_names,
    features,
    parse_input,
    render,
)
from retrain.task import Task

CLASSES = ("class_0", "class_1")


def labeling_config(classes=CLASSES) -> str:
    """A record's fields as an HTML table (`$image` holds what `render` gives: the adapter's
    one shown field), the model's guess pre-selected among the class choices."""
    choices = "".join(f"    <Choice value={quoteattr(c)}/>\n" for c in classes)
    return (
        "<View>\n"
        '  <Header value="Loan applicant"/>\n'
        '  <HyperText name="image" value="$image" inline="true" selectionEnabled="false"/>\n'
        '  <Choices name="label" toName="image" choice="single" showInLine="true">\n'
        + choices
        + "  </Choices>\n"
        "</View>\n"
    )


def build_model():
    return TabularMLP(n_classes=len(CLASSES))


def simulation():
    """Agrawal traffic with concept, covariate and label drift (imported when asked for)."""
    from retrain.tabular.simulation import TabularSimulation

    return TabularSimulation()


TASK = Task(
    name="tabular",
    classes=CLASSES,
    input_shape=(N_INPUT,),
    build_model=build_model,
    encode_input=encode_input,
    decode_inputs=decode_inputs,
    features=features,
    render=render,
    labeling_config=labeling_config(),
    slice_attrs=("phase", "elevel", "zipband"),
    expectations=default_expectations(),
    simulation=simulation,
    parse_input=parse_input,
    input_schema=INPUT_SCHEMA,
    feature_names=feature_names(),
    recipe=RECIPE,
)
