"""What the search believes about shapes it has not trained (or not trained to the end).

Statistical models, each a pure function of the evidence handed to it: :mod:`.posterior`
(accuracy of every shape from the trainings so far), :mod:`.variant_posterior` (the same for
shape × precision variants), :mod:`.learning_curves` (a training's final accuracy from a prefix
of its curve), :mod:`.accuracy_model` (the paper's regression model, Eq. 1–3),
:mod:`.cost_model` (size, latency and energy of shapes not measured) and :mod:`.compute` (what a
training costs in seconds, and the compute budget).
"""
