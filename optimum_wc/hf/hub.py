"""Uploading a saved model folder to the Hugging Face Hub, in one commit, with errors named in our words."""

from __future__ import annotations

import pathlib

from optimum_wc.errors import HubUploadError, InvalidArgumentError
from optimum_wc.version import __version__


def push_folder(folder: pathlib.Path, repository_id: str, private: bool | None, token: bool | str | None) -> str:
    """Uploads ``folder`` (subfolders and model card included) to ``repository_id``, created if missing; returns the
    commit URL. A folder without a saved OpenVINO model is refused first."""
    from huggingface_hub import HfApi

    if not any(folder.rglob("openvino*model*.xml")):  # openvino_model.xml, openvino_encoder_model.xml, unet/...
        raise InvalidArgumentError(f"`save_directory` {folder} holds no saved model; call save_pretrained first.")
    api = HfApi(token=token, user_agent=f"optimum-wc/{__version__}")
    try:
        api.create_repo(repo_id=repository_id, private=private, exist_ok=True, token=token)
        commit = api.upload_folder(
            repo_id=repository_id,
            folder_path=folder,
            token=token,
            commit_message="Upload model compressed with optimum-wc",
        )
    except Exception as exc:  # noqa: BLE001 - httpx, huggingface_hub and OS errors alike, named in one class
        raise HubUploadError(
            f"Uploading {folder} to the Hub repository {repository_id!r} failed ({type(exc).__name__}: {exc}). "
            "The saved folder is unchanged; push it again once the Hub can be reached."
        ) from exc
    return str(commit)
