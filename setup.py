"""advjax: robust image classification in JAX/Flax."""
import os

from setuptools import find_packages, setup

here = os.path.dirname(os.path.abspath(__file__))


def _reqs(name):
  with open(os.path.join(here, name), encoding="utf-8") as f:
    return [l.strip() for l in f if l.strip() and not l.startswith("#")]


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
    install_requires=_reqs("requirements.txt"),
    extras_require={
        "test": _reqs("requirements-test.txt"),
        "notebooks": ["jupyter>=1.0", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29",
                      "foolbox>=3.3"],  # foolbox ships real CIFAR-10/ImageNet sample PNGs
    },
    license="Apache-2.0",
)
