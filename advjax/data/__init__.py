"""Data sources (offline MNIST, TFDS, image folders, npz, ArrayRecord), batching, sharding
and the Grain pipeline (uint8 random-access sources, sharded iterators with a state)."""

from advjax.data._array_record import ArrayRecordSource
from advjax.data._array_record import prepare_array_record
from advjax.data._folder import FolderSource
from advjax.data._folder import decode_image
from advjax.data._grain import ArraySource
from advjax.data._grain import EVAL_TRANSFORMS
from advjax.data._grain import grain_eval_iterator
from advjax.data._grain import grain_train_iterator
from advjax.data._grain import num_eval_batches
from advjax.data._grain import open_source
from advjax.data._grain import resize_center_crop
from advjax.data._grain import shard_range
from advjax.data._grain import TfdsSource
from advjax.data._grain import TRAIN_AUGMENTS
from advjax.data._pipeline import ARRAY_AUGMENTS
from advjax.data._pipeline import augment_batch
from advjax.data._pipeline import epoch_permutation
from advjax.data._pipeline import iterate_eval
from advjax.data._pipeline import iterate_train
from advjax.data._pipeline import steps_per_epoch
from advjax.data._pipeline import train_batch
from advjax.data._sharding import data_sharding
from advjax.data._sharding import gather
from advjax.data._sharding import make_mesh
from advjax.data._sharding import replicate
from advjax.data._sharding import replicated
from advjax.data._sharding import shard_batch
from advjax.data._streams import open_splits
from advjax.data._streams import read_eval_split
from advjax.data._streams import SubsetSource
from advjax.data._sources import ArrayDataset
from advjax.data._sources import load_folder
from advjax.data._sources import load_mnist5k
from advjax.data._sources import load_npz
from advjax.data._sources import load_splits
from advjax.data._sources import load_tfds
from advjax.data._sources import stratified_split

__all__ = [
  "ARRAY_AUGMENTS",
  "ArrayDataset",
  "augment_batch",
  "data_sharding",
  "epoch_permutation",
  "iterate_eval",
  "iterate_train",
  "load_folder",
  "load_mnist5k",
  "load_npz",
  "load_splits",
  "load_tfds",
  "gather",
  "make_mesh",
  "replicate",
  "replicated",
  "shard_batch",
  "steps_per_epoch",
  "stratified_split",
  "train_batch",
  # Grain pipeline: random-access uint8 sources, sharded iterators with a state
  "ArrayRecordSource",
  "ArraySource",
  "EVAL_TRANSFORMS",
  "FolderSource",
  "TfdsSource",
  "TRAIN_AUGMENTS",
  "grain_eval_iterator",
  "grain_train_iterator",
  "num_eval_batches",
  "open_source",
  "prepare_array_record",
  "shard_range",
  # a dataset's splits as sources (training on the Grain pipeline)
  "open_splits",
  "read_eval_split",
  "SubsetSource",
  # one image: decoding and RobustBench's ImageNet evaluation preprocessing
  "decode_image",
  "resize_center_crop",
]
