"""lrtools: the plumbing behind the Learning-Rate Dynamics book.

Importing lrtools is cheap: it imports neither TensorFlow nor PyTorch. The
framework helpers live in :mod:`lrtools.keras_tools` and
:mod:`lrtools.torch_tools`, which mirror each other's names.
"""

from lrtools.seeding import seed_everything

__version__ = "0.1.0"
__all__ = ["seed_everything", "__version__"]
