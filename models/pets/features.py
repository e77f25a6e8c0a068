"""Feature names, classes and image-size settings of the pets (cats vs dogs) task."""

# Raw features written by components/image_example_gen.py.
IMAGE_KEY = "image"  # encoded JPEG or PNG bytes
LABEL_KEY = "label"  # class name as bytes (the name of the class sub-folder)
FILENAME_KEY = "filename"  # "<class>/<file>" relative to the task's data folder

# Class order of the model's output (`probabilities[:, i]` is the probability of CLASS_NAMES[i]).
CLASS_NAMES = ("cat", "dog")

# Transformed features.
IMAGE_XF = "image_xf"  # float32 [size, size, 3] in [0, 1]
# int64 class id (the factory's label for TFMA)
from models.common.contract import LABEL_XF  # noqa: E402,F401  (the transformed label)
LABEL_NAME_XF = "label_name"  # class name as a string, for slicing TFMA results by class

# Side length (pixels) of the square images the model sees; fixed at Transform time.
DEFAULT_IMAGE_SIZE = 128
