"""Training a sketch model: settings (``config``), batches (``batching``), one step (``step``), the loop
(``loop``), the run folder and its checkpoints (``checkpoints``), and many processes (``distributed``)."""

from sketchgen.training.config import Interrupted, TrainConfig, TrainingError
from sketchgen.training.distributed import is_main_process
from sketchgen.training.loop import MAX_BAD_STEPS, dataset_loss, train, usable

__all__ = ["Interrupted", "MAX_BAD_STEPS", "TrainConfig", "TrainingError", "dataset_loss", "is_main_process", "train",
           "usable"]
