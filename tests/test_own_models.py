"""Users' own Keras models: keras.applications backbones in the nested fine-tuning pattern
and a hand-written functional model — import, CAM = Grad-CAM, PAS/PASA/RRR steps,
save/load in safe mode (32–64 px inputs, ``weights=None``).

Training steps run eagerly here: tracing a compiled step of a 100-layer backbone costs
20–60 s on two CPU cores, an eager step of a 32 px batch well under a second."""
import numpy as np
import pytest
import tensorflow as tf

from classification_models.classifier import Classifier
from classification_models.input_convention import resolve_convention
from classification_models.own_model import find_parts
from common.errors import UserError
from datasets.base import ArrayDataset
from retraining.data import RetrainData, masked_set_from_items
from retraining.loop import clone_classifier, make_optimizer, to_tensors
from retraining.methods import get_method

SIZE = 32
CLASSES = ["a", "b", "c"]


def rgb_dataset(size: int = SIZE, channels: int = 3, n: int = 12) -> ArrayDataset:
    """Class c: a bright bar at row 4 + 6c; a class-correlated corner square (masked) in train."""
    rng = np.random.default_rng(0)

    def split(count, corner):
        y = np.arange(count) % 3
        x = rng.integers(0, 60, (count, size, size, channels)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 4 + 6 * c: 7 + 6 * c, 8:26] = 230
            if corner:
                x[i, size - 8:, :8] = 70 * c + 40
        return x, y

    irrelevant = {}
    for i in range(n):
        m = np.zeros((size, size), np.uint8)
        m[size - 8:, :8] = 255
        irrelevant[f"train_{i:05d}"] = m
    return ArrayDataset(CLASSES, {"train": split(n, True), "val": split(6, False), "test": split(6, False)},
                        irrelevant=irrelevant)


def nested(app: str, size: int = SIZE):
    """``Sequential([Rescaling, Backbone(include_top=False), GAP, Dropout, Dense(softmax)])``."""
    import keras
    from keras import layers

    kwargs = {"alpha": 0.35} if app == "MobileNetV2" else {}
    backbone = getattr(keras.applications, app)(include_top=False, weights=None, input_shape=(size, size, 3),
                                                **kwargs)
    return keras.Sequential([keras.Input((size, size, 3)), layers.Rescaling(1 / 127.5, offset=-1), backbone,
                             layers.GlobalAveragePooling2D(), layers.Dropout(0.2),
                             layers.Dense(3, activation="softmax")], name=f"user_{app.lower()}")


def functional(size: int = SIZE, pooled: bool = True):
    """Hand-written functional model: Rescaling, conv blocks with a residual add, softmax head."""
    import keras
    from keras import layers

    inp = keras.Input((size, size, 3), name="pixels")
    x = layers.Rescaling(1 / 255.0)(inp)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.Add()([x, y])
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(12, 3, padding="same", activation="relu", name="top_conv")(x)
    if pooled:
        x = layers.GlobalAveragePooling2D()(x)
    else:
        x = layers.Flatten()(x)
        x = layers.Dense(16, activation="relu")(x)
    x = layers.Dense(3, name="scores")(x)
    out = layers.Softmax()(x)
    return keras.Model(inp, out, name="handwritten" if pooled else "flat_head")


BUILDERS = {  # name -> (builder, image size); MobileNetV2 at 64 px has a 2×2 grid
    "resnet50": lambda: nested("ResNet50"),
    "mobilenetv2": lambda: nested("MobileNetV2", 64),
    "efficientnetb0": lambda: nested("EfficientNetB0"),
    "densenet121": lambda: nested("DenseNet121"),
    "functional": functional,
}


SIZES = {"mobilenetv2": 64}


@pytest.fixture(scope="module", autouse=True)
def eager_steps():
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


def _rgb_data_and_selection(size: int):
    from tests.fixtures_retrain import selection_items

    ds = rgb_dataset(size)
    items, masks = selection_items(ds, 2)
    return ds, masked_set_from_items(ds, items, masks)


@pytest.fixture(scope="module")
def data():
    return _rgb_data_and_selection(SIZE)


def _import(model, ds):
    conv = resolve_convention(model, data_channels=ds.image_shape[2], source="test")
    return Classifier(model, CLASSES, input_convention=conv, source="test")


def _tape_gradcam(clf, x):
    """Grad-CAM of every logit by an explicit tape through the view, ``[N, h, w, C]``."""
    acts = clf._features(clf.model_input(x), training=False)
    maps = []
    for c in range(clf.num_classes):
        with tf.GradientTape() as tape:
            tape.watch(acts)
            logit = tf.reduce_sum(clf.head_logits(acts)[:, c])
        g = tape.gradient(logit, acts).numpy()
        h, w = g.shape[1:3]
        maps.append(h * w * np.einsum("nhwk,nk->nhw", acts.numpy(), g.mean(axis=(1, 2))))
    return np.stack(maps, axis=-1)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_import_cam_retrain_save_load(name, data, tmp_path):
    size = SIZES.get(name, SIZE)
    ds, sel = data if size == SIZE else _rgb_data_and_selection(size)
    model = BUILDERS[name]()
    clf = _import(model, ds)
    assert clf.has_cam_head and clf.input_shape == (size, size, 3)
    assert clf.input_convention.source.startswith("detected: layer 'rescaling")
    x = ds.arrays("train").images[:4].astype(np.float32)
    # logits are the Dense pre-activation: softmax(logits) is the model's output
    _, logits = clf.forward(x)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)
    # CAM == Grad-CAM of each logit (tape), and the per-image variant picks the right class
    cams = clf.cams(x, upsample=False).cams
    gradcam = _tape_gradcam(clf, x)
    scale = np.abs(gradcam).max() + 1e-12
    np.testing.assert_allclose(cams / scale, gradcam / scale, atol=2e-4)
    one = clf.cams(x, classes=np.array([0, 1, 2, 0]), upsample=False).cams
    np.testing.assert_allclose(one, cams[np.arange(4), ..., [0, 1, 2, 0]], rtol=1e-5, atol=1e-5)
    # a step of PAS, PASA and RRR each changes the user's model's weights
    data_ = RetrainData(ds, sel, masked_set_from_items(ds, [], []), clf.grid_shape, {"mode": "area", "threshold": 0.25})
    work = clone_classifier(clf) if name == "functional" else clf  # cloning a big backbone is slow
    for method in ("pas", "pasa", "rrr"):
        m = get_method(method, {"lam": 1.0} if method != "pasa" else {})
        m.setup(clf=work, data=data_, batch_random=1, batch_selected=1, seed=0)
        before = [w.copy() for w in work.model.get_weights()]
        loss, logs = work.make_train_step(m.loss, make_optimizer("sgd", 0.05))(
            to_tensors(m.sample_batch(np.random.default_rng(0))))
        assert np.isfinite(float(loss)) and float(logs["penalty"]) >= 0
        after = work.model.get_weights()
        assert any(not np.array_equal(a, b) for a, b in zip(before, after)), method
    # the retrained model is the user's architecture and loads in safe mode
    path = work.save(tmp_path / "retrained.keras")
    back = Classifier.load(path, CLASSES, input_convention=work.input_convention)
    assert type(back.model) is type(model) and [l.name for l in back.model.layers] == [l.name for l in model.layers]
    np.testing.assert_allclose(back.predict_proba(x), work.predict_proba(x), rtol=1e-4, atol=1e-5)
    assert back.parts.feature_layer == work.parts.feature_layer


def test_flat_head_gets_grad_cam_and_selective_dropout_refuses(data):
    ds, sel = data
    clf = _import(functional(pooled=False), ds)
    assert not clf.has_cam_head and clf.parts.describe()["maps"] == "grad_cam"
    x = ds.arrays("train").images[:3].astype(np.float32)
    cams = clf.cams(x, upsample=False).cams
    np.testing.assert_allclose(cams, _tape_gradcam(clf, x), rtol=1e-4, atol=1e-5)
    data_ = RetrainData(ds, sel, masked_set_from_items(ds, [], []), clf.grid_shape, {"mode": "area", "threshold": 0.25})
    for method in ("selective_dropout", "rrr_gradcam"):
        m = get_method(method, {"k": 2} if method == "selective_dropout" else {})
        with pytest.raises(UserError, match=f"method '{method}' needs CAM weights, but test has no "
                                            "global-average-pooling head \\(Flatten -> Dense -> Dense\\)"):
            m.setup(clf=clone_classifier(clf), data=data_, batch_random=2, batch_selected=2, seed=0)
    m = get_method("pas", {"lam": 1.0})
    m.setup(clf=clone_classifier(clf), data=data_, batch_random=2, batch_selected=2, seed=0)
    loss, _ = m.clf.make_train_step(m.loss, make_optimizer("sgd", 0.01))(to_tensors(m.sample_batch(np.random.default_rng(0))))
    assert np.isfinite(float(loss))


def test_named_layers_and_bad_names(data):
    ds, _ = data
    model = functional()
    clf = Classifier(model, CLASSES, feature_layer="top_conv", logits_layer="scores", source="m.keras")
    assert clf.parts.feature_layer == "top_conv" and clf.grid_shape == (16, 16, 12)
    assert clf.parts.output_activation == "linear"  # the named Dense is linear; softmax follows it
    with pytest.raises(UserError, match="m.keras: feature layer 'nope' does not exist in model 'handwritten'"):
        Classifier(model, CLASSES, feature_layer="nope", source="m.keras")
    with pytest.raises(UserError, match="m.keras: logits layer 'top_conv' is a Conv2D, not a Dense layer"):
        Classifier(model, CLASSES, logits_layer="top_conv", source="m.keras")


def test_no_conv_feature_map_and_channel_mismatch(data):
    import keras
    from keras import layers

    inp = keras.Input((8, 8, 3))
    dense_only = keras.Model(inp, layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(inp)))
    with pytest.raises(UserError, match="x.keras: no conv feature map"):
        find_parts(dense_only, source="x.keras")
    with pytest.raises(UserError, match="x.keras: the model takes 3-channel images but the data set has 2"):
        resolve_convention(dense_only, data_channels=2, source="x.keras")
    with pytest.raises(UserError, match="no Rescaling/Normalization layer"):
        resolve_convention(dense_only, data_channels=3, source="x.keras")


def test_gray_data_into_rgb_model_and_scales():
    from classification_models.input_convention import InputConvention, to_model_pixels

    x = np.full((1, 2, 2, 1), 255.0, np.float32)
    conv = InputConvention(scale="minus1_1", data_channels=1, model_channels=3)
    out = to_model_pixels(x, convention=conv).numpy()
    assert out.shape == (1, 2, 2, 3) and np.allclose(out, 1.0)
    assert conv.to_dict()["channels"] == "gray channel repeated 3×"
    ms = InputConvention(scale="mean_std", mean=(127.5,) * 3, std=(127.5,) * 3)
    assert np.allclose(to_model_pixels(np.zeros((1, 1, 1, 3)), convention=ms).numpy(), -1.0)
    assert np.allclose(to_model_pixels(x[..., :1] * 0 + 51, convention=InputConvention(scale="0_1", data_channels=1,
                                                                                          model_channels=1)), 0.2)


def test_freeze_up_to_a_layer_and_batch_norm_inference(data):
    from retraining.config import Freeze

    ds, sel = data
    clf = _import(functional(), ds)
    conv_names = [l.name for l in clf.model.layers if type(l).__name__ == "Conv2D"]
    work = clone_classifier(clf, freeze=Freeze(up_to=conv_names[1], batch_norm="inference"))
    frozen = [l for l in work.model.layers if l.name in conv_names[:2]]
    bn = next(l for l in work.model.layers if type(l).__name__ == "BatchNormalization")
    assert all(not l.trainable for l in frozen + [bn])
    before = {id(v): v.numpy().copy() for l in frozen + [bn] for v in l.weights}
    top = work.model.get_layer("top_conv").kernel.numpy().copy()
    data_ = RetrainData(ds, sel, masked_set_from_items(ds, [], []), work.grid_shape, {"mode": "area", "threshold": 0.25})
    m = get_method("pas", {"lam": 1.0})
    m.setup(clf=work, data=data_, batch_random=2, batch_selected=2, seed=0)
    work.make_train_step(m.loss, make_optimizer("sgd", 0.1))(to_tensors(m.sample_batch(np.random.default_rng(0))))
    assert all(np.array_equal(v.numpy(), before[id(v)]) for l in frozen + [bn] for v in l.weights)  # incl. BN statistics
    assert not np.array_equal(work.model.get_layer("top_conv").kernel.numpy(), top)
    from classification_models.own_model import trainable_summary

    s = trainable_summary(work.model, up_to=conv_names[1], batch_norm="inference")
    assert s["first_trainable_layer"] == "top_conv" and s["trainable_layers"] == 2 and s["non_trainable_weights"] > 0
    with pytest.raises(UserError, match="freeze: up_to layer 'nope' does not exist in model 'handwritten'"):
        clone_classifier(clf, freeze=Freeze(up_to="nope"))
