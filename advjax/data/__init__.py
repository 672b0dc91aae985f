"""Data sources (offline MNIST, TFDS, image folders, npz), batching and sharding."""
from advjax.data._pipeline import epoch_permutation
from advjax.data._pipeline import iterate_eval
from advjax.data._pipeline import iterate_train
from advjax.data._pipeline import steps_per_epoch
from advjax.data._pipeline import train_batch
from advjax.data._sharding import data_sharding
from advjax.data._sharding import make_mesh
from advjax.data._sharding import replicate
from advjax.data._sharding import replicated
from advjax.data._sharding import shard_batch
from advjax.data._sources import ArrayDataset
from advjax.data._sources import load_folder
from advjax.data._sources import load_mnist5k
from advjax.data._sources import load_npz
from advjax.data._sources import load_splits
from advjax.data._sources import load_tfds
from advjax.data._sources import stratified_split

__all__ = [
    "ArrayDataset", "data_sharding", "epoch_permutation", "iterate_eval",
    "iterate_train", "load_folder", "load_mnist5k", "load_npz", "load_splits",
    "load_tfds", "make_mesh", "replicate", "replicated", "shard_batch",
    "steps_per_epoch", "stratified_split", "train_batch",
]
