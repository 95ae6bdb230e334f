"""The machinery that runs the method as a pipeline: the stage runner, the artifact layout, the HTML reports,
the figures and the hyperparameter search. The method itself (physics, data, models) is the rest of ``axs``."""
