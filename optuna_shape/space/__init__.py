"""What can be searched: shapes, the design space, limits and deployment precisions.

Pure Python (no torch, no Optuna): :mod:`.shape` (a network's depth and width, and the
protocol every searched point shares), :mod:`.design_space` (the grid of shapes of one family),
:mod:`.constraints` (the user's limits and goal), :mod:`.precision` (number formats a network
can be deployed in and what each costs in size), :mod:`.measurement_record` (a shape's measured
or predicted latency and energy: the typed record screening stores).
"""
