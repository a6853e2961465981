"""The plumbing every CLIP method here shares, as a Dassl trainer.

A method subclass supplies only what is its own: `config_node` (its TRAINER.<node>), `class_prompts`,
`build_adapter` (its trainable module, which says where it plugs into CLIP) and, if its loss is not plain
cross-entropy, `compute_loss`. Building the frozen CLIP, precision, the optimizer over the adapter only,
the training step, cached text features at evaluation and checkpoint loading live here, once.
"""
import os
import re

import torch.nn.functional as F

from harness import run_clock
from harness.bundled.torchtools import remove_temporary_files
from harness.clip.adapted_clip import AdaptedCLIP
from harness.clip.backbones import build_frozen_clip
from harness.clip.precision import autocast, check_precision, grad_scaler, weight_dtype
from harness.data.loaders import build_data_manager
from harness.engine import (
    TrainerX,
    build_lr_scheduler,
    build_optimizer,
    check_supported,
    compute_accuracy,
    evaluate_split,
    load_checkpoint,
    load_pretrained_weights,
    save_checkpoint,
)
from harness.errors import CheckpointError, warn
from harness.run_state import capture_rng_states, restore_rng_states

CHECKPOINT_NAME = "adapter_learner"
# Buffers the official MMA checkpoints carry that depend on the class list: never loaded, so a checkpoint
# trained on base classes evaluates on new classes or another dataset.
CLASS_DEPENDENT_KEYS = ("token_embedding", "tokenized_prompts")
EPOCH_CHECKPOINT = re.compile(r"model\.pth\.tar-(\d+)")
# The newest epoch checkpoint, and the one before as the fallback should the newest be damaged.
KEPT_EPOCH_CHECKPOINTS = 2


def epoch_checkpoints(folder):
    """The epochs that have a checkpoint in a model's checkpoint folder, newest first."""
    if not os.path.isdir(folder):
        return []
    matches = (EPOCH_CHECKPOINT.fullmatch(name) for name in os.listdir(folder))
    return sorted((int(match.group(1)) for match in matches if match), reverse=True)


class CLIPAdapterTrainer(TrainerX):
    config_node = None
    last_evaluation = None  # the SplitEvaluation of the latest test (train.py's result record reads it)
    resumed_rng_states = None  # restored before the first epoch after a resume

    @property
    def method_cfg(self):
        return self.cfg.TRAINER[self.config_node]

    @property
    def precision(self):
        return self.method_cfg.PREC

    def check_cfg(self, cfg):
        check_supported(cfg)  # first: SimpleTrainer.__init__ calls check_cfg before loading any data
        check_precision(cfg.TRAINER[self.config_node].PREC, f"TRAINER.{self.config_node}.PREC")

    def class_prompts(self, classnames):
        raise NotImplementedError

    def build_adapter(self, clip):
        """The method's trainable module (None for none); it must provide `branches(clip)`."""
        raise NotImplementedError

    def build_data_loader(self):
        """Dassl's loaders, with the harness's dataset wrapper (one-line image errors, the test-image cache)."""
        with run_clock.current().phase("dataset"):
            self.dm = build_data_manager(self.cfg, self.device)
        self.train_loader_x, self.train_loader_u = self.dm.train_loader_x, self.dm.train_loader_u
        self.val_loader, self.test_loader = self.dm.val_loader, self.dm.test_loader
        self.num_classes, self.num_source_domains = self.dm.num_classes, self.dm.num_source_domains
        self.lab2cname = self.dm.lab2cname

    def build_model(self):
        cfg = self.cfg
        classnames = [name.replace("_", " ") for name in self.dm.dataset.classnames]
        print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        with run_clock.current().phase("backbone"):
            clip = build_frozen_clip(cfg)
        adapter = self.build_adapter(clip)
        print("Building custom CLIP")
        self.model = AdaptedCLIP(clip, self.class_prompts(classnames), adapter)
        self.model.to(dtype=weight_dtype(self.precision))

        trainable = sorted(name for name, p in self.model.named_parameters() if p.requires_grad)
        print(f"Parameters to be updated: {{{', '.join(map(repr, trainable))}}}")
        print(f"Number of trainable parameters: {sum(p.numel() for p in self.model.parameters() if p.requires_grad)}")
        if cfg.MODEL.INIT_WEIGHTS and adapter is not None:
            load_pretrained_weights(adapter, cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)

        self.scaler = grad_scaler(self.precision, self.device)
        if adapter is None:
            self.model.eval()
            return
        self.optim = build_optimizer(adapter, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model(CHECKPOINT_NAME, adapter, self.optim, self.sched)

    def compute_loss(self, image, label):
        """The training loss and the values to log; the default is cross-entropy over the class prompts."""
        logits = self.model(image)
        loss = F.cross_entropy(logits, label)
        return loss, {"loss": loss.item(), "acc": compute_accuracy(logits, label)[0].item()}

    def forward_backward(self, batch):
        run_clock.current().reached_first_step()
        image, label = self.parse_batch_train(batch)
        with autocast(self.precision, self.device):
            loss, summary = self.compute_loss(image, label)
        if self.scaler is None:
            self.model_backward_and_update(loss)
        else:
            self.detect_anomaly(loss)
            self.optim.zero_grad()
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optim)
            self.scaler.update()
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return summary

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def model_inference(self, image):
        return self.model(image)

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name=""):
        """Dassl's checkpoint, plus what an uninterrupted run would hold in memory at this point: the random-number
        states, the gradient scaler and the best validation result (see harness/run_state.py)."""
        run_state = {
            "trainer": self.cfg.TRAINER.NAME,
            "rng": capture_rng_states([self.train_loader_x]),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "best_result": float(self.best_result),
        }
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            state = {
                "state_dict": self._models[name].state_dict(),
                "epoch": epoch + 1,
                "optimizer": optim.state_dict() if optim is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
                "val_result": val_result,
                "run_state": run_state,
            }
            save_checkpoint(state, os.path.join(directory, name), is_best=is_best, model_name=model_name)

    def after_epoch(self):
        """Dassl's after_epoch, except that every epoch is saved (a killed run resumes from its last finished
        epoch); older epochs are deleted except those TRAIN.CHECKPOINT_FREQ asks for."""
        cfg = self.cfg
        if not cfg.TEST.NO_TEST and cfg.TEST.FINAL_MODEL == "best_val":
            current = self.test(split="val")
            if current > self.best_result:
                self.best_result = current
                self.save_model(self.epoch, self.output_dir, val_result=current, model_name="model-best.pth.tar")
        self.save_model(self.epoch, self.output_dir)
        frequency = cfg.TRAIN.CHECKPOINT_FREQ
        for name in self.get_model_names():
            folder = os.path.join(self.output_dir, name)
            for old_epoch in epoch_checkpoints(folder)[KEPT_EPOCH_CHECKPOINTS:]:
                if not (frequency > 0 and old_epoch % frequency == 0):
                    os.remove(os.path.join(folder, f"model.pth.tar-{old_epoch}"))

    def read_checkpoint(self, path):
        """A checkpoint's content, refused with one line when another trainer wrote it."""
        checkpoint = load_checkpoint(path)
        written_by = (checkpoint.get("run_state") or {}).get("trainer")
        if written_by not in (None, self.cfg.TRAINER.NAME):
            raise CheckpointError(f"{path} was written by the {written_by} trainer, not {self.cfg.TRAINER.NAME}: "
                                  "use that trainer, or another --output-dir / --model-dir.")
        return checkpoint

    def resume_model_if_exist(self, directory):
        """Resume from the newest epoch checkpoint that loads (a damaged one falls back to the one before), with
        everything an uninterrupted run would hold at that point, so the run continues bit for bit."""
        names = self.get_model_names()
        for name in names:
            remove_temporary_files(os.path.join(directory, name))
        for epoch in epoch_checkpoints(os.path.join(directory, names[0])) if names else []:
            try:
                checkpoints = {name: self.read_checkpoint(os.path.join(directory, name, f"model.pth.tar-{epoch}"))
                               for name in names}
            except CheckpointError as error:
                warn(f"{error} Trying an earlier checkpoint.")
                continue
            print(f"Found checkpoint at {directory} (will resume training)")
            for name, checkpoint in checkpoints.items():
                self.restore_checkpoint(name, checkpoint, os.path.join(directory, name, f"model.pth.tar-{epoch}"))
            print(f"Previous epoch: {epoch}")
            return epoch
        print("No checkpoint found, train from scratch")
        return 0

    def restore_checkpoint(self, name, checkpoint, path):
        print(f'Loading checkpoint from "{path}"')
        try:
            self._models[name].load_state_dict(checkpoint["state_dict"])
            print("Loaded model weights")
            if self._optims[name] is not None and checkpoint.get("optimizer") is not None:
                self._optims[name].load_state_dict(checkpoint["optimizer"])
                print("Loaded optimizer")
        except (RuntimeError, ValueError, KeyError) as error:
            raise CheckpointError(
                f"{path} does not match the {self.cfg.TRAINER.NAME} adapter built from this config "
                f"({str(error).splitlines()[0][:200]}): resume with the config it was trained with, or train into "
                "another --output-dir."
            ) from None
        if self._scheds[name] is not None and checkpoint.get("scheduler") is not None:
            self._scheds[name].load_state_dict(checkpoint["scheduler"])
            print("Loaded scheduler")
        run_state = checkpoint.get("run_state")
        if run_state is None:
            warn(f"{path} holds no random-number states (it was not written by this harness): the epochs after it "
                 "draw other batches than an uninterrupted run would.")
            return
        if self.scaler is not None and run_state["scaler"]:
            self.scaler.load_state_dict(run_state["scaler"])
        self.best_result = run_state["best_result"]
        self.resumed_rng_states = run_state["rng"]

    def before_epoch(self):
        if self.resumed_rng_states is not None:
            restore_rng_states(self.resumed_rng_states, [self.train_loader_x])
            self.resumed_rng_states = None

    def test(self, split=None):
        """Dassl's test step; the evaluation is handed on as `last_evaluation` (train.py's result record)."""
        self.last_evaluation = evaluate_split(self, split)
        return list(self.last_evaluation.results.values())[0]

    def load_model(self, directory, epoch=None):
        """Load adapter weights for evaluation (the CoOp family's override of Dassl's load_model).

        Class-dependent buffers are skipped; any other missing or unexpected key is an error, never a silent
        partial load.
        """
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        model_file = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
        for name in self.get_model_names():
            model_path = os.path.join(directory, name, model_file)
            if not os.path.exists(model_path):
                folder = os.path.dirname(model_path)
                available = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
                raise CheckpointError(
                    f'Model not found at "{model_path}" (files there: {available or "none"}): check --model-dir '
                    "and --load-epoch (the epoch the training run saved, usually OPTIM.MAX_EPOCH)."
                )
            checkpoint = self.read_checkpoint(model_path)
            state_dict = {k: v for k, v in checkpoint["state_dict"].items() if k not in CLASS_DEPENDENT_KEYS}
            print(f'Loading weights to {name} from "{model_path}" (epoch = {checkpoint["epoch"]})')
            missing, unexpected = self._models[name].load_state_dict(state_dict, strict=False)
            if missing or unexpected:
                raise CheckpointError(
                    f"{model_path} does not match the {self.cfg.TRAINER.NAME} adapter built from this config: "
                    f"missing keys {missing}, unexpected keys {unexpected}. Use the trainer config the checkpoint "
                    "was trained with."
                )
