"""What every optimum-wc model class adds to its optimum-intel class: weights compressed by optimum-wc, never nncf.

``from_pretrained`` checks the compression arguments, asks optimum-intel to export or load the model with its own
compression switched off, then compresses the IR with :func:`optimum_wc.compress.compress_model`. Intercepting
here, rather than in optimum-intel's internal hooks, also covers the model types for which optimum-intel swaps in
a class of its own: the returned object is then of a class that derives from both ours and theirs.
``save_pretrained`` writes atomically and adds the per-weight record and the model card. A model class derives
from :func:`compressed_model` of an optimum-intel class and fills in its hooks.
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Any

import openvino as ov
from optimum_wc._utils.atomic import atomic_directory, disk_errors
from optimum_wc.compress import check_run_options, compress_model
from optimum_wc.config.datasets import DATASET_NAMES, TEXT_DATASETS, parse_dataset_name
from optimum_wc.config.options import RUN_OPTIONS
from optimum_wc.config.pipeline import PipelineCompressionConfig, check_model_names, each_config
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.config.settings import CompressionSettings, bind_options
from optimum_wc.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    ModelNotFoundError,
    NotYetSupportedError,
    UnsupportedModelError,
)
from optimum_wc.hf.defaults import resolve_quantization_config, with_default_ignored_scope
from optimum_wc.hf.exporting import (
    check_checkpoint_files,
    check_no_offload,
    convert_tokenizer,
    export_folders_the_next_run_can_repair,
    size_based_compression_off,
)
from optimum_wc.hf.hub import push_folder
from optimum_wc.openvino.ir_files import check_ir_files
from optimum_wc.pipeline.calibration import SEED, check_hub_dataset
from optimum_wc.pipeline.rt_info import imported_origin
from optimum_wc.pipeline.summary import CompressionSummary
from optimum_wc.saving.folder import (
    AUTO_INT8_MIN_WEIGHTS,
    copy_tokenizer,
    float_weight_elements,
    is_compressed,
    saved_config,
    set_runtime_options,
    write_records,
)

logger = logging.getLogger(__name__)


def _is_lookup_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says that a model could not be fetched (rather than that it could not be exported)."""
    module = type(exc).__module__
    return isinstance(exc, OSError) or module.startswith(("httpx", "httpcore", "huggingface_hub", "requests"))


def _model_names(intel_class: type) -> list[str]:
    """The names of the OpenVINO models of ``intel_class`` and of every subclass optimum-intel may return in its place
    (a LLaVA for a visual causal LM), known before the export."""
    names = dict.fromkeys(intel_class._all_ov_model_paths)
    for subclass in intel_class.__subclasses__():
        names.update(dict.fromkeys(_model_names(subclass)))
    return list(names)


def compressed_model(intel_class: type) -> type:
    """A subclass of optimum-intel's ``intel_class`` (an ``OVModelFor...``) whose weights optimum-wc compresses.

    A model class derives from the result and fills in its hooks: :meth:`_check_config` (refusals of its own,
    before any work), :meth:`_import_model` (a checkpoint that is imported rather than exported),
    :meth:`_calibration_inputs` (the config's text turned into model inputs). A subclass rather than a mixin: an
    instance of optimum-intel's class can then take ours as its class (a mixin base would change the layout).
    """

    class CompressedModel(intel_class):
        """``intel_class`` with the optimum-wc side: see :func:`compressed_model`."""

        class_name = "CompressedModel"  # the optimum_wc class that loads the saved model (named in its model card)
        wraps = intel_class  # the optimum-intel class this one compresses the weights of
        calibrates = False  # whether _calibration_inputs turns a config's text into inputs for the model
        calibration_datasets = TEXT_DATASETS  # the dataset names whose kind of data the model calibrates on
        feeds_one_model = True  # whether _calibration_inputs gives one OpenVINO model its inputs (else: all at once)
        # what optimum-intel's export is told of compression, which decides the precision it traces a 16-bit
        # checkpoint in, as it does when it compresses the model itself: False where that is the same
        export_load_in_8bit: bool | None = False
        _wc_config: WeightCompressionConfig | None = None
        _wc_summary: CompressionSummary | None = None
        _wc_origin: dict[str, str] | None = None  # where an imported GPTQ/AWQ model's quantization came from

        @classmethod
        def from_pretrained(
            cls,
            model_id: str | os.PathLike,
            export: bool = False,
            *,
            load_in_8bit: bool | None = None,
            load_in_4bit: bool | None = None,
            quantization_config: WeightCompressionConfig | PipelineCompressionConfig | dict | None = None,
            compile: bool = True,
            **kwargs: Any,
        ):
            """Exports (``export=True``) or loads the model, then compresses its weights with optimum-wc.

            Args:
                model_id: A Hub id, or a local folder with a Transformers checkpoint or a saved OpenVINO model.
                export: Convert a Transformers checkpoint to OpenVINO IR (forced when the folder has no IR).
                load_in_8bit: INT8_ASYM per channel.
                load_in_4bit: optimum-intel's 4-bit default: its tuned config for the model if it has one, else
                    INT4_ASYM, group 128, ratio 1.0 (the same as ``quantization_config={"bits": 4}``).
                quantization_config: A :class:`WeightCompressionConfig`, an ``OVWeightQuantizationConfig``, or a dict in
                    our or optimum-intel's vocabulary; ``{"bits": 4}`` and ``{"bits": 8}`` are optimum-intel's defaults
                    for the model. A :class:`PipelineCompressionConfig` (or ``OVPipelineQuantizationConfig``, or its
                    dict form) gives each OpenVINO model of the model its own.
                compile: Compile the model for inference now (otherwise at first use).
                **kwargs: ``compress_weights``'s run options (``num_workers``, ``progress``, ``scratch_dir``), which
                    change how the compression runs, not its result; the others go to optimum-intel (``device``,
                    ``ov_config``, ``local_files_only``, ``tokenizer``...).

            With none of the three, each OpenVINO model of 1e9 or more weight elements is compressed to INT8_ASYM, as
            optimum-intel does. A model that was saved compressed is loaded as it is, with its
            ``quantization_config`` restored.

            Raises:
                InvalidArgumentError: Conflicting or invalid compression arguments (checked before any work).
                UnsupportedModelError: Compression is asked of a model whose weights are already compressed.
                OSError, ValueError: The model cannot be found or exported (from transformers / optimum-intel).
            """
            run = {name: kwargs.pop(name) for name in RUN_OPTIONS if name in kwargs}
            check_run_options(**run)
            check_no_offload(kwargs)
            path = pathlib.Path(str(model_id))
            if path.exists() and not path.is_dir():
                raise InvalidArgumentError(f"`model_id` {model_id!r} is a file; pass the folder that holds the model.")
            ir_xml = path / kwargs.get("subfolder", "") / (kwargs.get("file_name") or "openvino_model.xml")
            if path.is_dir() and (ir_xml.exists() or ir_xml.with_suffix(".bin").exists()):
                check_ir_files(ir_xml)  # a damaged file is named before OpenVINO reads it
            if path.is_dir():
                check_checkpoint_files(path / kwargs.get("subfolder", ""))
            config = resolve_quantization_config(str(model_id), load_in_8bit, load_in_4bit, quantization_config)
            if config is not None:
                cls._check_config(config)
                config.checked_settings()  # refuse bad settings, and data-aware options without data, before exporting
                for each in each_config(config):
                    check_hub_dataset(each.to_compress_kwargs()["dataset"])  # offline: refused before the export
            imported = cls._import_model(
                model_id, export, config is not None or bool(load_in_8bit or load_in_4bit), kwargs
            )
            if imported is not None:
                if compile:
                    imported.compile()
                return imported
            try:
                with export_folders_the_next_run_can_repair(), size_based_compression_off():
                    model = super().from_pretrained(
                        model_id, export=export, load_in_8bit=cls.export_load_in_8bit, compile=False, **kwargs
                    )
            except Exception as exc:
                if path.is_dir() or not _is_lookup_failure(exc):
                    raise
                raise ModelNotFoundError(
                    f"Cannot find model {str(model_id)!r}: it is not a local folder, and the Hugging Face Hub could "
                    f"not serve it ({type(exc).__name__}: {exc}). Check the id, the network, or pass a local folder."
                ) from exc
            model = cls._adopt(model)
            asked = config is not None
            if config is None and load_in_8bit is None and load_in_4bit is None:
                config = model._size_based_config()
            if config is not None:
                trust = kwargs.get("trust_remote_code", False)
                model.compress(config, trust_remote_code=trust, model_id=str(model_id) if asked else None, **run)
            else:
                model._restore_saved_config()
            if compile:
                model.compile()
            return model

        @classmethod
        def _adopt(cls, model: Any) -> Any:
            """``model`` as a ``cls``: of ``cls`` itself if optimum-intel gave its base class, else of a class that
            derives from ``cls`` and the subclass optimum-intel chose (ours first, so ours wins)."""
            if not isinstance(model, cls):
                chosen = type(model)
                model.__class__ = (
                    cls if issubclass(cls, chosen) else type(f"OptimumWC{chosen.__name__}", (cls, chosen), {})
                )
            return model

        @classmethod
        def _check_config(cls, config: WeightCompressionConfig | PipelineCompressionConfig) -> None:
            """Refusals of this model class, before any work: a per-model config naming a model this class does
            not have, and calibration text where the class does not turn it into inputs yet."""
            if isinstance(config, PipelineCompressionConfig):
                check_model_names(config, _model_names(intel_class), cls.class_name)
            if not cls.calibrates and any(each.dataset is not None and each.takes_data for each in each_config(config)):
                raise NotYetSupportedError(
                    f"{cls.class_name} does not take a calibration `dataset` yet (data-aware compression of its "
                    "OpenVINO models); drop `dataset` for data-free compression."
                )
            for each in each_config(config):
                named = isinstance(each.dataset, str) and not pathlib.Path(each.dataset).exists()
                if named and parse_dataset_name(each.dataset)[0] in set(DATASET_NAMES) - set(cls.calibration_datasets):
                    raise InvalidArgumentError(
                        f"`dataset`={each.dataset!r} holds another kind of data than {cls.class_name} calibrates on; "
                        f"its dataset names are {', '.join(cls.calibration_datasets)}, or pass local data."
                    )

        def _size_based_config(self) -> WeightCompressionConfig | PipelineCompressionConfig | None:
            """optimum-intel's compression when none is asked for: INT8_ASYM for each OpenVINO model of 1e9 or more
            weights, the others left as they are (and no default ignored scopes, as there)."""
            models = self._wc_models()
            if any(is_compressed(each) for each in models.values()):
                return None
            large = [name for name, each in models.items() if float_weight_elements(each) >= AUTO_INT8_MIN_WEIGHTS]
            if not large:
                return None
            if list(models) == ["model"]:
                return WeightCompressionConfig(bits=8)
            return PipelineCompressionConfig({name: WeightCompressionConfig(bits=8) for name in large})

        def _wc_models(self) -> dict[str, ov.Model]:
            """The OpenVINO models this model is made of, by optimum-intel's names for them."""
            return dict(self.ov_models)

        def _model_configs(
            self, config: WeightCompressionConfig | PipelineCompressionConfig
        ) -> dict[str, WeightCompressionConfig]:
            """The config of each OpenVINO model to compress: by default, a plain config applies to every one."""
            if isinstance(config, PipelineCompressionConfig):
                chosen = {name: config.for_model(name) for name in self._wc_models()}
                return {name: each for name, each in chosen.items() if each is not None}
            return {name: config for name in self._wc_models()}

        @classmethod
        def _import_model(cls, model_id: str | os.PathLike, export: bool, compression_asked: bool, kwargs: dict) -> Any:
            """A model imported rather than exported (a GPTQ/AWQ checkpoint), or None (the default)."""
            return None

        def _calibration_inputs(self, config: WeightCompressionConfig, seed: int, trust_remote_code: bool) -> list:
            """The config's calibration text as inputs for the model (classes with ``calibrates``)."""
            raise NotImplementedError(f"{type(self).__name__} does not turn calibration text into model inputs.")

        def _calibration_set(self, name: str, config: Any, seed: int, trust_remote_code: bool, collected: dict) -> list:
            """The calibration inputs of the OpenVINO model ``name`` (a class whose models are all fed by one run
            keeps that run in ``collected``)."""
            return self._calibration_inputs(config, seed, trust_remote_code)

        def compress(
            self,
            config: WeightCompressionConfig | PipelineCompressionConfig,
            dataset: Any = None,
            *,
            seed: int = SEED,
            trust_remote_code: bool = False,
            model_id: str | None = None,
            **run: Any,
        ) -> CompressionSummary:
            """Compresses the model's weights in place with optimum-wc and records what was done.

            Args:
                config: What to do: one config, or one per OpenVINO model (a :class:`PipelineCompressionConfig`);
                    its ``dataset`` (text) is tokenized into calibration inputs, unless ``dataset`` is given (8-bit
                    integer weights take none, as in optimum-intel).
                dataset: Calibration inputs ready for the model (an ``nncf.Dataset`` or an iterable of input dicts),
                    or a dict of them by OpenVINO model name (the others then data-free, as optimum-intel does).
                seed: optimum-intel's quantizer seed, which draws the samples of a Hub dataset.
                trust_remote_code: Whether the tokenizer may run its repository's code.
                model_id: The id or folder the model came from, under which optimum-intel's default ignored scopes
                    are looked up, as its ``from_pretrained`` does (None: none are added, as its quantizer does).
                **run: ``compress_weights``'s run options (``num_workers``, ``progress``, ``scratch_dir``).

            Returns the summary of what was done, over every OpenVINO model compressed.
            """
            models = self._wc_models()
            if any(is_compressed(each) for each in models.values()):
                raise UnsupportedModelError(
                    "The model's weights are already compressed (its rt_info has an nncf section); "
                    "load the original checkpoint to compress it differently."
                )
            self._check_config(config)
            configs = self._model_configs(config)
            if model_id is not None:
                configs = {name: with_default_ignored_scope(model_id, each, name) for name, each in configs.items()}
            fed = [name for name, each in configs.items() if each.takes_data]  # the models `dataset` would calibrate
            per_model = dataset if isinstance(dataset, dict) else None
            if dataset is not None and per_model is None and len(fed) > 1:
                raise NotYetSupportedError(
                    f"`dataset` would calibrate {fed}: give calibration data for one OpenVINO model at a time."
                )
            settings, collected = {}, {}  # every model's, checked before any change; what one run of the model fed
            for name, each in configs.items():
                options = each.to_compress_kwargs()
                given = dataset if per_model is None else per_model.get(name)
                if given is not None and name in fed:
                    options["dataset"], options["advanced_parameters"] = given, each.advanced_parameters
                elif per_model is not None:
                    options["dataset"] = None
                elif options["dataset"] is not None:
                    options["dataset"] = self._calibration_set(name, each, seed, trust_remote_code, collected)
                    if each.spqr is None:  # optimum-intel's num_samples for data it builds: as many as it built
                        options["subset_size"] = len(options["dataset"])
                settings[name] = CompressionSettings.from_arguments(**options)
            summaries = []
            for name, each in configs.items():
                result = compress_model(models[name], settings[name], **vars(bind_options(run, RUN_OPTIONS)))
                set_runtime_options(models[name], each.dq_group_size)
                summaries.append(result.summary)
            self.clear_requests()
            summary = summaries[0] if len(summaries) == 1 else CompressionSummary.combined(summaries)
            self._wc_config, self._wc_summary = config, summary
            return summary

        @property
        def quantization_config(self) -> WeightCompressionConfig | PipelineCompressionConfig | None:
            """The config the weights were compressed with (restored from ``openvino_config.json`` on reload)."""
            return self._wc_config

        @property
        def compression_summary(self) -> CompressionSummary | None:
            return self._wc_summary

        @property
        def quantization_origin(self) -> dict[str, str] | None:
            """For a model imported from a GPTQ/AWQ checkpoint: its method, bits, group size, format and source."""
            return self._wc_origin

        def _restore_saved_config(self) -> None:
            models = self._wc_models()
            self._wc_origin = imported_origin(models["model"]) if "model" in models else None
            self._wc_config = saved_config(pathlib.Path(str(self.model_save_dir)))

        def save_pretrained(
            self,
            save_directory: str | os.PathLike,
            push_to_hub: bool = False,
            compress_to_fp16: bool = False,
            convert_tokenizer: bool = True,
            **kwargs: Any,
        ):
            """Saves the model, its configs, tokenizer files, per-weight record and model card; atomically.

            Everything is written into a staging folder that replaces ``save_directory`` at the end, so a failure
            midway leaves any previous save intact. ``compress_to_fp16`` stores the remaining float weights as f16;
            ``convert_tokenizer=False`` writes no OpenVINO tokenizer models that the source folder lacks.
            """
            push_options = {"repository_id", "private", "token"}
            unknown = sorted(set(kwargs) - push_options) if push_to_hub else sorted(kwargs)
            if unknown:
                raise InvalidArgumentTypeError(f"save_pretrained() got unexpected keyword argument(s) {unknown}.")
            if push_to_hub and not kwargs.get("repository_id"):
                raise InvalidArgumentError("`push_to_hub=True` needs `repository_id` (e.g. 'user/model-int4').")
            with atomic_directory(save_directory) as staging, disk_errors(staging):
                super().save_pretrained(staging)
                if compress_to_fp16:
                    for name, model in self._wc_models().items():
                        ov.save_model(model, staging / self._ov_model_paths[name], compress_to_fp16=True)
                self._save_extras(staging, convert_tokenizer)
            if push_to_hub:
                return self.push_to_hub(str(save_directory), **kwargs)
            return None

        def push_to_hub(
            self,
            save_directory: str,
            repository_id: str,
            private: bool | None = None,
            token: bool | str | None = None,
        ) -> str:
            """Uploads a saved folder (subfolders and model card included) to the Hub in one commit.

            Same signature as optimum's ``push_to_hub``; unlike it, the folder's layout is kept. Returns the commit URL.
            """
            return push_folder(pathlib.Path(save_directory), repository_id, private, token)

        def _save_extras(self, folder: pathlib.Path, convert: bool = True) -> None:
            source = pathlib.Path(str(self.model_save_dir)) if self.model_save_dir is not None else None
            copy_tokenizer(source, folder, convert_tokenizer if convert else None, warn=convert)
            models = self._wc_models()
            models = models["model"] if list(models) == ["model"] else models  # one model: its records, unnested
            records = (models, self._wc_config, self._wc_summary, self.config, self._wc_origin)
            write_records(folder, *records, model_class=self.class_name)

    return CompressedModel
