"""The face models: budgets, a real short training run, export round-trip, loading checks, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rescnn_appliance.cli import main
from rescnn_appliance.config import ConfigError
from rescnn_appliance.training.augment import AugmentSettings, FaceAugmenter
from rescnn_appliance.training.datasets import (
    AFFECTNET_CLASSES,
    FER_CLASSES,
    DatasetError,
    FaceSet,
    expression_distribution,
    fer_va_targets,
    load_faces,
    load_fer_csv,
    load_image_folder,
)
from rescnn_appliance.training.export import quantize_int8, save_module, script_fp32
from rescnn_appliance.training.nets import build_ecnn, build_va_mobilenet, count_parameters
from rescnn_appliance.training.recipes import train_ecnn, train_va
from rescnn_appliance.training.ship import export_pair, with_warm_starts
from rescnn_appliance.training.train import TrainConfig, distill_loss, score_of, warm_start
from rescnn_appliance.vision.affect import AffectModel, ModelError
from rescnn_appliance.vision.preprocess import FaceInputError, denoise, prepare_faces, prepare_inputs

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "models"


def fer_npz(shared_data: Path) -> Path:
    return shared_data / "fer2013" / "fer2013_trainval.npz"


@pytest.fixture(scope="module")
def shipped() -> Path:
    if not (SHIPPED / "ecnn.json").exists():
        pytest.skip("no shipped models in models/ (run `make models`)")
    return SHIPPED


def test_parameter_budgets_and_shapes() -> None:
    ecnn, va = build_ecnn(), build_va_mobilenet()
    assert count_parameters(ecnn) <= 2_600_000
    assert count_parameters(va) <= 1_800_000
    assert ecnn(torch.zeros(3, 1, 48, 48)).shape == (3, 7)
    out = va.eval()(torch.randn(3, 1, 64, 64))
    assert out.shape == (3, 2) and out.abs().max() <= 1
    # the expression-conditioned VA net: two outputs for the appliance, class logits only in training
    va8 = build_va_mobilenet(classes=8)
    assert count_parameters(va8) <= 1_800_000
    out = va8.eval()(torch.randn(3, 1, 64, 64))
    assert out.shape == (3, 2) and out.abs().max() <= 1
    assert va8.train()(torch.randn(3, 1, 64, 64)).shape == (3, 10)


def test_deeper_ecnn_starts_as_the_shallower_one() -> None:
    """Warm-starting an ECNN with more residual blocks from a shallower one's weights: the new
    net gives the same outputs before training; a shallower target is refused with one line."""
    torch.manual_seed(0)
    shallow = build_ecnn()
    shallow.train()(torch.randn(16, 1, 48, 48))  # non-trivial BatchNorm running statistics
    shallow.eval()
    deep = build_ecnn((1, 2, 1, 1))
    assert warm_start(deep, deep.adapt_state(shallow.state_dict()))  # the new blocks' tensors stay fresh
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(deep.eval()(x), shallow(x), atol=1e-6)
    assert count_parameters(deep) <= 2_600_000
    with pytest.raises(ValueError, match="more than this ECNN"):
        build_ecnn((0, 0, 1, 1)).adapt_state(shallow.state_dict())
    with pytest.raises(SystemExit):
        main(["models", "train-ecnn", "--blocks", "1,2"])


def test_va_follows_the_recognised_expression() -> None:
    """With no per-face correction, a face read as one expression gets that expression's
    (valence, arousal) coordinates; an even mix gets their mean (before the tanh)."""
    coords = torch.tensor([[0.0, 0.0], [0.7, 0.1], [-0.6, -0.3], [0.2, 0.7],
                           [-0.1, 0.8], [-0.7, 0.4], [-0.4, 0.6], [-0.5, 0.6]])
    va = build_va_mobilenet(classes=8).eval()
    va.set_class_coordinates(coords)
    last = va.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[2 + AFFECTNET_CLASSES.index("happy")] = 30.0
        happy = va(torch.randn(2, 1, 64, 64))
        last.bias[2 + AFFECTNET_CLASSES.index("sad")] = 30.0
        mixed = va(torch.randn(1, 1, 64, 64))
    assert torch.allclose(happy, coords[1].expand(2, 2), atol=1e-4)
    expected = torch.tanh((torch.atanh(coords[1]) + torch.atanh(coords[2])) / 2)
    assert torch.allclose(mixed[0], expected, atol=1e-4)


def test_expression_targets_follow_the_ferplus_votes() -> None:
    ferplus = np.array([
        [0, 10, 0, 0, 0, 0, 0, 0, 0, 0],      # all happiness
        [5, 0, 5, 0, 0, 0, 0, 0, 0, 0],       # neutral and surprise
        [0, 0, 0, 0, 0, 0, 0, 4, 0, 6],       # contempt, rest not-a-face
        [-1] * 10,                            # not matched: the FER2013 label decides
    ], np.int8)
    faces = FaceSet(np.zeros((4, 48, 48), np.uint8), y=np.array([3, 6, 0, 4]), ferplus=ferplus)
    dist = expression_distribution(faces)
    named = [dict(zip(AFFECTNET_CLASSES, row.round(3).tolist())) for row in dist]
    assert named[0]["happy"] == 1.0
    assert named[1]["neutral"] == 0.5 and named[1]["surprise"] == 0.5
    assert named[2]["contempt"] == 1.0
    assert named[3]["sad"] == 1.0
    # the VA targets of FER faces: the voted expressions' coordinates, averaged by the votes
    coords = np.random.default_rng(0).uniform(-1, 1, (8, 2)).astype(np.float32)
    va = np.stack(fer_va_targets(faces, coords), 1)
    at = {name: coords[i] for i, name in enumerate(AFFECTNET_CLASSES)}
    assert np.allclose(va, [at["happy"], (at["neutral"] + at["surprise"]) / 2, at["contempt"], at["sad"]], atol=1e-6)


def test_short_real_va_training_from_a_plain_regressor(shared_data: Path, tmp_path: Path) -> None:
    """The expression-conditioned VA net trains on real faces, warm-started from a plain
    regressor's weights (its two outputs become the per-face correction)."""
    plain = build_va_mobilenet()
    torch.save(plain.state_dict(), tmp_path / "plain.pt")
    cfg = TrainConfig(task="va", epochs=3, batch_size=32, lr=0.02, limit=256, threads=1, input_size=48,
                      affectnet_repeat=1, fer_per_epoch=256, init_from=str(tmp_path / "plain.pt"))
    history = train_va(fer_npz(shared_data), shared_data / "affectnet_va" / "affectnet_va_dev.npz",
                       tmp_path / "va", cfg)
    losses = [e["train_loss"] for e in history["epochs"]]
    assert losses[-1] < losses[0]
    trained = build_va_mobilenet(classes=8)
    trained.load_state_dict(torch.load(tmp_path / "va" / "best.pt"))
    assert not torch.equal(trained.head[0].weight, plain.head[0].weight)  # it learnt
    coords = np.load(tmp_path / "va" / "circumplex_coords.npy")
    assert coords.shape == (8, 2) and coords[AFFECTNET_CLASSES.index("happy"), 0] > 0.3


def test_short_real_training_lowers_loss(shared_data: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(task="ecnn", epochs=3, batch_size=32, lr=0.02, limit=384, threads=1)
    history = train_ecnn(fer_npz(shared_data), tmp_path, cfg)
    losses = [e["train_loss"] for e in history["epochs"]]
    assert losses[-1] < losses[0]
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    # resume continues from the checkpoint instead of starting over
    cfg4 = TrainConfig(task="ecnn", epochs=4, batch_size=32, lr=0.02, limit=384, threads=1)
    resumed = train_ecnn(fer_npz(shared_data), tmp_path, cfg4, resume=True)
    assert [e["epoch"] for e in resumed["epochs"]][-1] == 4
    # resuming with another recipe is refused, naming the checkpoint and the setting; nothing lost
    before = (tmp_path / "last.pt").read_bytes()
    other = TrainConfig(task="ecnn", epochs=4, batch_size=32, lr=0.03, limit=384, threads=1,
                        augment=AugmentSettings(noise_p=0.6))
    with pytest.raises(ConfigError, match=r"last\.pt: --resume with a different recipe "
                                          r"\(lr 0\.02 -> 0\.03; augment\.noise_p 0\.5 -> 0\.6\)"):
        train_ecnn(fer_npz(shared_data), tmp_path, other, resume=True)
    assert (tmp_path / "last.pt").read_bytes() == before
    # a warm start begins from those weights (first loss near the last one, not the untrained one)
    # and the card's history shows both runs, the earlier one first
    warm = TrainConfig(task="ecnn", epochs=1, batch_size=32, lr=0.005, limit=384, threads=1,
                       init_from=str(tmp_path / "best.pt"))
    second = train_ecnn(fer_npz(shared_data), tmp_path / "warm", warm)
    assert second["epochs"][0]["train_loss"] < losses[0]
    chain = with_warm_starts(second, Path("/"))
    assert [e["epoch"] for e in chain["epochs"]] == [1, 2, 3, 4, 5]
    assert chain["warm_starts"][0]["recipe"]["lr"] == 0.02 and chain["config"]["lr"] == 0.005


def test_export_round_trip_matches_eager() -> None:
    torch.manual_seed(0)
    for model, size in ((build_ecnn().eval(), 48), (build_va_mobilenet().eval(), 64),
                        (build_va_mobilenet(classes=8).eval(), 64)):
        x = torch.randn(4, 1, size, size)
        scripted = script_fp32(model, size)
        with torch.no_grad():
            assert torch.allclose(scripted(x), model(x), atol=1e-5)


def _write_models(tmp: Path) -> Path:
    """Real exported TorchScript files (untrained weights) with a card, for loader tests."""
    calib = np.random.default_rng(0).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    for name, net, size in (("ecnn", build_ecnn(), 48), ("va", build_va_mobilenet(), 64)):
        net.eval()
        variants = {"fp32": save_module(script_fp32(net, size), tmp / f"{name}_fp32.pt"),
                    "int8": save_module(quantize_int8(net, calib, size), tmp / f"{name}_int8.pt")}
        (tmp / f"{name}.json").write_text(json.dumps({"variants": variants, "input": {"size": size}}))
    return tmp


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_models(tmp_path_factory.mktemp("models"))


def test_loader_refuses_altered_truncated_and_missing_files(model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "m"
    shutil.copytree(model_dir, bad)
    AffectModel.load(bad)  # intact: loads
    data = (bad / "ecnn_fp32.pt").read_bytes()
    (bad / "ecnn_fp32.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"ecnn_fp32\.pt: sha256 .* truncated or altered"):
        AffectModel.load(bad)
    (bad / "ecnn_fp32.pt").unlink()
    with pytest.raises(ModelError, match=r"ecnn_fp32\.pt: model file missing"):
        AffectModel.load(bad)
    shutil.copy(model_dir / "ecnn_fp32.pt", bad / "ecnn_fp32.pt")
    (bad / "va.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"va\.json: unreadable model card"):
        AffectModel.load(bad)
    with pytest.raises(ModelError, match="models folder not found"):
        AffectModel.load(tmp_path / "nowhere")


def test_int8_and_fp32_predict_shapes_and_bad_input(model_dir: Path) -> None:
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    for precision in ("fp32", "int8"):
        probs, v, a = AffectModel.load(model_dir, precision).predict(faces)
        assert probs.shape == (5, 7) and np.allclose(probs.sum(1), 1, atol=1e-4)
        assert v.shape == a.shape == (5,) and np.all(np.abs(v) <= 1)
    model = AffectModel.load(model_dir)
    with pytest.raises(FaceInputError, match=r"shape \(N,48,48\), got \(5, 64, 64\)"):
        model.predict(np.zeros((5, 64, 64), np.uint8))
    with pytest.raises(FaceInputError, match="uint8 grey crops, got dtype float32"):
        model.predict(np.zeros((5, 48, 48), np.float32))


def test_appliance_inputs_are_the_papers_preprocessing_at_each_size() -> None:
    """The appliance denoises each crop once for both models; each input must still be the crop
    denoised, resized to that network's size and standardised on its own (flat crops included)."""
    faces = np.random.default_rng(3).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    faces[0] = 90  # flat: the deviation floor keeps it at zeros, not noise
    for size, x in zip((48, 64), prepare_inputs(faces, (48, 64))):
        clean = np.stack([cv2.resize(denoise(f), (size, size), interpolation=cv2.INTER_LINEAR_EXACT)
                          for f in faces]).astype(np.float64)
        mean = clean.mean(axis=(1, 2), keepdims=True)
        by_hand = (clean - mean) / np.maximum(clean.std(axis=(1, 2), keepdims=True), 4.0)
        assert x.shape == (6, 1, size, size)
        np.testing.assert_allclose(x[:, 0], by_hand, atol=1e-5)
    np.testing.assert_array_equal(prepare_faces(faces, 64), prepare_inputs(faces, (48, 64))[1])


def test_preprocessing_cancels_illumination_gain() -> None:
    face = np.random.default_rng(2).integers(40, 160, (1, 48, 48), dtype=np.uint8)
    brighter = np.clip(face.astype(int) * 3 // 2, 0, 255).astype(np.uint8)
    assert np.abs(prepare_faces(face) - prepare_faces(brighter)).mean() < 0.05


def test_noise_augmentation_draws_sigma_from_the_asked_range(capsys: pytest.CaptureFixture[str]) -> None:
    """``--sigma-range 40,60`` trains on faces at least that noisy; a reversed range is refused."""
    flat = np.full((64, 48, 48), 128, np.uint8)
    noisy = FaceAugmenter(AugmentSettings(noise_p=1.0, sigma_min=40.0, sigma_max=60.0, salt_pepper_max=0.0,
                                          gain=(1.0, 1.0)), seed=3).sensor(flat)
    spread = noisy.reshape(64, -1).std(axis=1)
    assert spread.min() > 35 and spread.max() < 62
    assert FaceAugmenter(AugmentSettings(noise_p=0.0), seed=3).sensor(flat).std() == 0
    with pytest.raises(SystemExit):
        main(["models", "train-ecnn", "--sigma-range", "60,10"])
    assert "--sigma-range '60,10': need 0 <= LO <= HI <= 255" in capsys.readouterr().err


def test_teacher_sees_the_same_face_without_the_noise() -> None:
    """``--teacher``: the pair differs only by sensor noise, and the distillation term is the KL
    divergence from the teacher's softened answer (zero when the two agree)."""
    faces = np.random.default_rng(4).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    noisy_aug = AugmentSettings(noise_p=1.0, sigma_min=40.0, sigma_max=60.0)
    clean, noisy = FaceAugmenter(noisy_aug, seed=5).pair(faces)
    assert np.array_equal(clean, FaceAugmenter(AugmentSettings(noise_p=0.0), seed=5)(faces))
    assert np.abs(clean - noisy).mean() > 0.1
    same, also = FaceAugmenter(AugmentSettings(noise_p=0.0), seed=5).pair(faces)
    assert np.array_equal(same, also)
    logits = torch.randn(4, 7)
    assert distill_loss(logits, logits, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    t, s = torch.softmax(logits / 2, 1), torch.softmax(logits.flip(1) / 2, 1)
    by_hand = (t * (t.log() - s.log())).sum(1).mean() * 4
    assert distill_loss(logits.flip(1), logits, 2.0).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_distilled_run_scores_and_selects_on_the_asked_conditions(shared_data: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    teacher = REPO / "checkpoints" / "ecnn" / "best.pt"
    if not teacher.exists():
        pytest.skip(f"{teacher} not in this checkout")
    cfg = TrainConfig(task="ecnn", epochs=2, batch_size=32, lr=0.001, limit=256, threads=1,
                      ecnn_blocks=(0, 1, 2, 1), init_from=str(teacher), teacher=str(teacher),
                      val_conditions=("gaussian",))
    history = train_ecnn(fer_npz(shared_data), tmp_path, cfg)
    epochs = history["epochs"]
    assert all(0.2 < e["gaussian_accuracy"] < e["accuracy"] for e in epochs)  # noise costs accuracy
    assert history["best"] == max(epochs, key=lambda e: (e["accuracy"] + e["gaussian_accuracy"]) / 2)
    assert score_of("ecnn", {"accuracy": 0.6, "gaussian_accuracy": 0.5}) == pytest.approx(0.55)
    with pytest.raises(SystemExit):
        main(["models", "train-ecnn", "--val-conditions", "gaussian,fog"])
    assert "--val-conditions 'gaussian,fog': unknown fog" in capsys.readouterr().err
    assert main(["models", "train-ecnn", "--teacher", str(tmp_path / "nope.pt")]) != 0
    assert "nope.pt: teacher weights not found" in capsys.readouterr().err


def test_more_augmentation_workers_train_the_same_run(shared_data: Path, tmp_path: Path) -> None:
    """``--workers`` only changes speed: each batch has its own seeded generator."""
    losses = []
    for workers in (1, 3):
        cfg = TrainConfig(task="ecnn", epochs=1, batch_size=32, lr=0.02, limit=160, threads=1, workers=workers)
        losses.append(train_ecnn(fer_npz(shared_data), tmp_path / str(workers), cfg)["epochs"][0]["train_loss"])
    assert losses[0] == losses[1]
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    aug = FaceAugmenter()
    assert not np.array_equal(aug(faces, np.random.default_rng(1)), aug(faces, np.random.default_rng(2)))


def test_training_curves_show_a_metric_only_later_runs_recorded(tmp_path: Path) -> None:
    """A chain of runs where only the last scored the Gaussian condition still plots (the card's PNG)."""
    from rescnn_appliance.training.plots import plot_curves

    epochs = [{"epoch": i + 1, "train_loss": 2.0 - 0.1 * i, "accuracy": 0.4 + 0.01 * i} for i in range(6)]
    for e in epochs[3:]:
        e["gaussian_accuracy"] = e["accuracy"] - 0.1
    png = tmp_path / "curves.png"
    plot_curves({"epochs": epochs}, ["accuracy", "gaussian_accuracy", "macro_f1"], png, "ECNN")
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] > 500


def test_loaders_read_csv_and_image_folder(shared_data: Path, tmp_path: Path) -> None:
    val = load_faces(fer_npz(shared_data), "val")
    csv = tmp_path / "fer2013.csv"
    lines = ["emotion,pixels,Usage"] + [
        f"{val.y[i]},{' '.join(map(str, val.x[i].ravel()))},PublicTest" for i in range(20)]
    csv.write_text("\n".join(lines) + "\n")
    got = load_fer_csv(csv, "val")
    assert np.array_equal(got.x, val.x[:20]) and np.array_equal(got.y, val.y[:20])
    csv.write_text("\n".join(lines + ["3,1 2 3,PublicTest"]) + "\n")
    with pytest.raises(DatasetError, match=r"fer2013\.csv:22: bad row"):
        load_fer_csv(csv, "val")
    import cv2

    for i in range(14):
        folder = tmp_path / "imgs" / "train" / FER_CLASSES[val.y[i]]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), val.x[i])
    got = load_image_folder(tmp_path / "imgs", "train")
    assert len(got) == 14 and sorted(got.y.tolist()) == sorted(val.y[:14].tolist())


def test_shipped_ecnn_guard_on_val_slice(shipped: Path, shared_data: Path) -> None:
    """Guard against shipping a broken model: a fixed 1,000-face slice of FER2013 val."""
    val = load_faces(fer_npz(shared_data), "val")
    model = AffectModel.load(shipped, "fp32")
    probs, _, _ = model.predict(val.x[:1000])
    acc = float((probs.argmax(1) == val.y[:1000]).mean())
    card = json.loads((shipped / "ecnn.json").read_text())
    assert acc >= min(0.68, card["metrics_val"]["fp32"]["clean"]["accuracy"] - 0.03), acc


def test_export_keeps_the_int8_calibration_closer_to_fp32(shared_data: Path, tmp_path: Path) -> None:
    """The export calibrates int8 both ways, scores both on the faces it is given, saves the
    better one (a loadable file whose sha256 the card carries) and records both scores."""
    val = load_faces(fer_npz(shared_data), "val").subset(np.arange(256))
    torch.manual_seed(0)
    variants = export_pair(build_ecnn().eval(), "ecnn", 48, val.x[:128], tmp_path, (val.x, val.y))
    cal = variants["int8"]["calibration"]
    assert set(cal["val_score"]) == {"stock ranges", "mean per-batch ranges"}
    assert cal["val_score"][cal["ranges"]] == max(cal["val_score"].values())
    saved = torch.jit.load(str(tmp_path / "ecnn_int8.pt"))
    assert saved(torch.from_numpy(prepare_faces(val.x[:2], 48))).shape == (2, 7)


def test_evaluate_cli_json_on_both_layouts(shipped: Path, shared_data: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    val = load_faces(fer_npz(shared_data), "val")
    small = tmp_path / "fer_small.npz"
    np.savez(small, x_val=val.x[:200], y_val=val.y[:200].astype(np.uint8))
    assert main(["models", "evaluate", "--npz", str(small), "--perturb", "all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["conditions"]) == {"clean", "gaussian", "impulse", "illumination"}
    clean = report["conditions"]["clean"]["emotion"]
    assert clean["n"] == 200 and len(clean["per_class_recall"]) == 7
    assert np.array(clean["confusion_matrix"]).sum() == 200
    aff = shared_data / "affectnet_va" / "affectnet_va_dev.npz"
    assert main(["models", "evaluate", "--npz", str(aff), "--split", "val", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    r = report["conditions"]["clean"]
    assert {"ccc", "rmse", "pearson_r"} <= set(r["valence"]) and r["emotion"]["n"] > 0
    assert main(["models", "evaluate", "--npz", str(tmp_path / "nope.npz")]) == 1
    assert "nope.npz: file not found" in capsys.readouterr().err
