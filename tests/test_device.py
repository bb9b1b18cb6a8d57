import pytest
import torch

from esc_course.device import DeviceError, available_devices, describe_device, get_device


def test_auto_picks_cpu_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("esc_course.device._mps_available", lambda: False)
    assert get_device("auto") == torch.device("cpu")
    assert get_device() == torch.device("cpu")


def test_auto_prefers_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device("auto") == torch.device("cuda")


def test_env_var_overrides_argument(monkeypatch):
    monkeypatch.setenv("ESC_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device("auto") == torch.device("cpu")
    assert get_device("cuda") == torch.device("cpu")


def test_missing_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError) as err:
        get_device("cuda")
    msg = str(err.value)
    assert "CUDA is not available" in msg and "cpu" in msg and "device='cuda'" in msg


def test_missing_cuda_from_env_names_the_variable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ESC_DEVICE", "cuda")
    with pytest.raises(DeviceError, match="ESC_DEVICE='cuda'"):
        get_device("auto")


def test_nonsense_device_lists_valid_forms():
    with pytest.raises(DeviceError, match="'auto', 'cpu', 'cuda'"):
        get_device("gpu-please")


def test_describe_device_has_the_facts():
    text = describe_device("cpu")
    for key in ("torch", "torchvision", "CUDA available", "threads", "deterministic", "device"):
        assert key in text
    assert available_devices()[-1] == "cpu"


@pytest.mark.gpu
def test_cuda_device_runs_a_matmul():
    device = get_device("cuda")
    x = torch.randn(64, 64, device=device)
    assert (x @ x).device.type == "cuda"
