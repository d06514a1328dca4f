"""The notebook UI: figures, diagrams, training dashboards and concept explorers."""
