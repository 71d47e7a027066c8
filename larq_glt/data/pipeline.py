"""tf.data pipelines over a train and a validation source, and the object that
``larq_glt.data.load`` returns.

Images stay ``uint8`` end to end; the model's input encoder does the rest.

Order and augmentation are a pure function of ``(seed, epoch)``: the epoch's
permutation comes from ``stateless_shuffle`` and each batch's augmentation from a
seed folded from ``(seed, epoch, batch index)``. ``train_epoch(e)`` therefore gives
the same batches in any process (what exact ``--resume`` needs), while ``train``
draws a fresh epoch key from a seeded random stream at each iteration (what
``model.fit(train, epochs=N)`` needs); both are reproducible from the seed.

With a ``sensor`` (:class:`.sensor.SensorConfig`) both splits are turned into a
linear sensor's ADC codes after augmentation: in training with a seed folded
from the batch's augmentation seed (new exposures and noise every epoch), in
validation with one seed per image, ``[seed + salt, image index]`` (the same
codes in every epoch and every process, whatever the batch size).
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from . import sensor as sensor_model
from .augment import AugmentConfig, augment_batch
from .errors import DatasetError
from .info import DatasetInfo
from .sources import ArraySource, FileSource

AUTOTUNE = tf.data.AUTOTUNE
_AUGMENT_SALT = 0x6A7E  # separates augmentation seeds from the shuffle seed
_UNBATCHED_CHUNK = 256


class DatasetSplits:
    """Train and validation pipelines of ``(images uint8 [B, S, S, 3], labels int32 [B])``.

    Attributes: ``train`` (shuffled, augmented when enabled, a new order each time
    it is iterated), ``val`` (fixed order, never augmented), ``num_classes``,
    ``class_names``, ``info`` (:class:`DatasetInfo`), ``batch_size``,
    ``steps_per_epoch``, ``validation_steps``.
    """

    def __init__(
        self,
        train: ArraySource | FileSource,
        val: ArraySource | FileSource,
        info: DatasetInfo,
        batch_size: int,
        seed: int,
        augment: AugmentConfig | None,
        drop_remainder: bool = False,
        cache_val: bool = False,
        sensor: "sensor_model.SensorConfig | None" = None,
    ):
        self._sources = {"train": train, "val": val}
        self._tensors = {}
        for split, source in self._sources.items():
            if isinstance(source, ArraySource):
                # One eager copy, captured by the pipeline functions as an input
                # (not baked into a graph constant) and gathered a batch at a time.
                # The source then views the tensor's memory (np.asarray does not
                # copy), so the decoded images are held once, not twice.
                images = tf.convert_to_tensor(source.images)
                source.images = np.asarray(images)
                self._tensors[split] = (images, tf.convert_to_tensor(source.labels))
            else:
                self._tensors[split] = (None, tf.convert_to_tensor(source.labels))
        self.info = info
        self.class_names = tuple(info.class_names)
        self.num_classes = len(self.class_names)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.augment = augment
        self.sensor = sensor
        self.drop_remainder = drop_remainder
        n_train = len(train)
        if n_train == 0:
            raise DatasetError(f"dataset {info.name!r}: no readable training images")
        if drop_remainder and n_train < batch_size:
            raise DatasetError(
                f"dataset {info.name!r}: {n_train} training images is less than one batch "
                f"of {batch_size} with drop_remainder"
            )
        div = (lambda a, b: a // b) if drop_remainder else (lambda a, b: math.ceil(a / b))
        self.steps_per_epoch = div(n_train, self.batch_size)
        self.validation_steps = math.ceil(len(val) / self.batch_size)
        self.image_size = info.image_size
        self.train = self._train()
        val_ds = self._batches("val", tf.data.Dataset.range(len(val)), self.batch_size, False)
        if sensor is not None:
            val_ds = self._val_sensor(val_ds)
        if cache_val and isinstance(val, FileSource):
            val_ds = val_ds.cache()
        self.val = val_ds.prefetch(AUTOTUNE)

    # -- building blocks ------------------------------------------------------
    def _batches(
        self, split: str, indices: tf.data.Dataset, batch_size: int, drop_remainder: bool
    ) -> tf.data.Dataset:
        source = self._sources[split]
        images, labels = self._tensors[split]
        if images is not None:
            ds = indices.batch(batch_size, drop_remainder=drop_remainder)
            return ds.map(
                lambda idx: (tf.gather(images, idx), tf.gather(labels, idx)),
                num_parallel_calls=AUTOTUNE,
            )
        size = source.image_size

        def decode(i):
            image, ok = tf.numpy_function(source.decode, [i], [tf.uint8, tf.bool], stateful=False)
            image.set_shape([size, size, 3])
            return image, tf.gather(labels, i), ok

        def readable(image, label, ok):
            return ok

        def without_flag(image, label, ok):
            return image, label

        ds = indices.map(decode, num_parallel_calls=AUTOTUNE)
        ds = ds.filter(readable).map(without_flag)
        return ds.batch(batch_size, drop_remainder=drop_remainder)

    def _epoch(self, epoch_key) -> tf.data.Dataset:
        n = len(self._sources["train"])
        base = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(epoch_key, tf.int64)])
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=base)
        indices = tf.data.Dataset.from_tensor_slices(order)
        ds = self._batches("train", indices, self.batch_size, self.drop_remainder)
        if self.augment is not None or self.sensor is not None:
            config, sensor = self.augment, self.sensor
            aug_seed = tf.random.experimental.stateless_fold_in(base, _AUGMENT_SALT)

            def augment(i, batch):
                seed = tf.random.experimental.stateless_fold_in(aug_seed, i)
                x = batch[0] if config is None else augment_batch(batch[0], seed, config)
                if sensor is not None:
                    x = sensor_model.linear_sensor(x, sensor_model.batch_seed(seed), sensor)
                return x, batch[1]

            ds = ds.enumerate().map(augment, num_parallel_calls=AUTOTUNE)
        return ds

    def _val_sensor(self, ds: tf.data.Dataset) -> tf.data.Dataset:
        """Validation batches → sensor codes, seeded per image index (the running
        count of images: the validation order is fixed)."""
        sensor, seed = self.sensor, self.seed

        def expose(x, y, start):
            index = start + tf.range(tf.shape(x)[0], dtype=tf.int64)
            return sensor_model.linear_sensor_per_image(x, sensor_model.validation_seeds(seed, index), sensor), y

        starts = ds.scan(tf.constant(0, tf.int64), lambda n, b: (n + tf.cast(tf.shape(b[0])[0], tf.int64), n))
        return tf.data.Dataset.zip((ds, starts)).map(lambda b, n: expose(b[0], b[1], n),
                                                     num_parallel_calls=AUTOTUNE)

    def sensor_codes(self, images: np.ndarray, split: str = "val", exposure=None) -> np.ndarray:
        """``images`` (the first ``len(images)`` of ``split`` in fixed order, as
        ``arrays`` gives them) as this pipeline's sensor codes: per image, seeded
        like the validation split. Without a sensor, the images unchanged."""
        if self.sensor is None:
            return np.asarray(images)
        offset = 0 if split == "val" else 1 << 40  # training images: seeds no validation image uses
        seeds = sensor_model.validation_seeds(self.seed, offset + tf.range(len(images), dtype=tf.int64))
        out = [sensor_model.linear_sensor_per_image(images[i:i + 256], seeds[i:i + 256], self.sensor, exposure)
               for i in range(0, len(images), 256)]
        return np.concatenate([o.numpy() for o in out]) if out else np.asarray(images)

    def _finish(self, ds: tf.data.Dataset) -> tf.data.Dataset:
        if isinstance(self._sources["train"], ArraySource):
            # Lets Keras show the epoch length from the first epoch on. Not for
            # files: one that became unreadable shortens the epoch.
            ds = ds.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch))
        return ds.prefetch(AUTOTUNE)

    def _train(self) -> tf.data.Dataset:
        keys = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True).take(1)
        return self._finish(keys.flat_map(self._epoch))

    # -- public ---------------------------------------------------------------
    def train_epoch(self, epoch: int) -> tf.data.Dataset:
        """The training batches of epoch ``epoch`` (0-based): same in every process."""
        return self._finish(self._epoch(tf.constant(int(epoch), tf.int64)))

    def train_from(self, initial_epoch: int = 0) -> tf.data.Dataset:
        """Epochs ``initial_epoch, initial_epoch + 1, ...`` back to back, without end;
        use with ``model.fit(..., steps_per_epoch=splits.steps_per_epoch,
        initial_epoch=initial_epoch)`` to resume exactly."""
        epochs = tf.data.Dataset.range(int(initial_epoch), 2**62)
        return epochs.flat_map(self._epoch).prefetch(AUTOTUNE)

    def with_labels(self, split: str, labels) -> "DatasetSplits":
        """The same splits with ``split``'s labels replaced (e.g. a teacher's
        choices for an unlabelled validation pool)."""
        sources = dict(self._sources)
        old = self._source(split)
        labels = np.asarray(labels, np.int32)
        if len(labels) != len(old):
            raise DatasetError(f"{len(labels)} labels for {len(old)} {split} images")
        if isinstance(old, ArraySource):
            sources[split] = ArraySource(old.images, labels)
        else:
            sources[split] = FileSource(old.paths, labels, old.image_size)
        return DatasetSplits(sources["train"], sources["val"], self.info, batch_size=self.batch_size,
                             seed=self.seed, augment=self.augment, drop_remainder=self.drop_remainder,
                             sensor=self.sensor)

    def num_examples(self, split: str) -> int:
        return len(self._source(split))

    def _source(self, split: str):
        if split not in self._sources:
            raise DatasetError(f"split must be 'train' or 'val', got {split!r}")
        return self._sources[split]

    def unbatched(self, split: str = "val") -> tf.data.Dataset:
        """``(image uint8 [S, S, 3], label int32)`` in fixed order, never augmented."""
        source = self._source(split)
        indices = tf.data.Dataset.range(len(source))
        ds = self._batches(split, indices, _UNBATCHED_CHUNK, False)
        return ds.unbatch().prefetch(AUTOTUNE)

    def arrays(self, split: str = "val", limit: int | None = None,
               spread: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(images uint8 [N, S, S, 3], labels int32 [N])`` as NumPy, fixed order, not
        augmented; the first ``limit`` examples if given, or with ``spread`` ``limit``
        examples evenly spaced over the split (file trees are in class order). In-memory
        data is returned as a read-only view, without a copy."""
        source = self._source(split)
        n = len(source) if limit is None else min(int(limit), len(source))
        order = range(len(source))
        if spread and n < len(source):
            order = np.unique(np.linspace(0, len(source) - 1, n).astype(np.int64))
            if isinstance(source, ArraySource):
                return source.images[order], source.labels[order]
        if isinstance(source, ArraySource):
            return source.images[:n], source.labels[:n]
        images, labels = [], []
        for i in order:
            if len(images) == n:
                break
            image, ok = source.decode(i)
            if ok:
                images.append(image)
                labels.append(source.labels[i])
        shape = (0, source.image_size, source.image_size, 3)
        stacked = np.stack(images) if images else np.zeros(shape, np.uint8)
        return stacked, np.asarray(labels, np.int32)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Unreadable files: found by the up-front scan, plus any that failed later."""
        late = []
        for source in self._sources.values():
            if isinstance(source, FileSource):
                late.extend(source.late_skipped)
        return list(self.info.skipped) + late

    def __repr__(self) -> str:
        i = self.info
        return (
            f"DatasetSplits({i.name!r}, train={i.num_train}, val={i.num_val}, "
            f"classes={self.num_classes}, image_size={i.image_size}, "
            f"batch_size={self.batch_size}, storage={i.storage!r}, skipped={i.num_skipped})"
        )
