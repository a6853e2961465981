"""The plumbing every CLIP method here shares, as a Dassl trainer.

A method subclass supplies only what is its own: `config_node` (its TRAINER.<node>), `class_prompts`,
`build_adapter` (its trainable module, which says where it plugs into CLIP) and, if its loss is not plain
cross-entropy, `compute_loss`. Building the frozen CLIP, precision, the optimizer over the adapter only,
the training step, cached text features at evaluation and checkpoint loading live here, once.
"""
import os

import torch
import torch.nn.functional as F

from harness.clip.adapted_clip import AdaptedCLIP
from harness.clip.backbones import build_frozen_clip
from harness.clip.precision import autocast, check_precision, grad_scaler, weight_dtype
from harness.data.loaders import build_data_manager
from harness.engine import (
    TrainerX,
    build_lr_scheduler,
    build_optimizer,
    compute_accuracy,
    load_checkpoint,
    load_pretrained_weights,
)
from harness.errors import CheckpointError

CHECKPOINT_NAME = "adapter_learner"
# Buffers the official MMA checkpoints carry that depend on the class list: never loaded, so a checkpoint
# trained on base classes evaluates on new classes or another dataset.
CLASS_DEPENDENT_KEYS = ("token_embedding", "tokenized_prompts")


class CLIPAdapterTrainer(TrainerX):
    config_node = None

    @property
    def method_cfg(self):
        return self.cfg.TRAINER[self.config_node]

    @property
    def precision(self):
        return self.method_cfg.PREC

    def check_cfg(self, cfg):
        check_precision(cfg.TRAINER[self.config_node].PREC, f"TRAINER.{self.config_node}.PREC")

    def class_prompts(self, classnames):
        raise NotImplementedError

    def build_adapter(self, clip):
        """The method's trainable module (None for none); it must provide `branches(clip)`."""
        raise NotImplementedError

    def build_data_loader(self):
        """Dassl's loaders, with the harness's dataset wrapper (one-line image errors, the test-image cache)."""
        self.dm = build_data_manager(self.cfg)
        self.train_loader_x, self.train_loader_u = self.dm.train_loader_x, self.dm.train_loader_u
        self.val_loader, self.test_loader = self.dm.val_loader, self.dm.test_loader
        self.num_classes, self.num_source_domains = self.dm.num_classes, self.dm.num_source_domains
        self.lab2cname = self.dm.lab2cname

    def build_model(self):
        cfg = self.cfg
        classnames = [name.replace("_", " ") for name in self.dm.dataset.classnames]
        print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
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

    def resume_model_if_exist(self, directory):
        # Dassl writes the `checkpoint` pointer file after the checkpoint itself: a run killed while saving leaves
        # the folder without it, and that run has nothing to resume (Dassl's resume would crash on the folder).
        if any(not os.path.isfile(os.path.join(directory, name, "checkpoint")) for name in self.get_model_names()):
            print("No checkpoint found, train from scratch")
            return 0
        return super().resume_model_if_exist(directory)

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
                available = sorted(os.listdir(os.path.dirname(model_path))) if os.path.isdir(os.path.dirname(model_path)) else []
                raise CheckpointError(
                    f'Model not found at "{model_path}" (files there: {available or "none"}): check --model-dir '
                    "and --load-epoch (the epoch the training run saved, usually OPTIM.MAX_EPOCH)."
                )
            checkpoint = load_checkpoint(model_path)
            state_dict = {k: v for k, v in checkpoint["state_dict"].items() if k not in CLASS_DEPENDENT_KEYS}
            print(f'Loading weights to {name} from "{model_path}" (epoch = {checkpoint["epoch"]})')
            missing, unexpected = self._models[name].load_state_dict(state_dict, strict=False)
            if missing or unexpected:
                raise CheckpointError(
                    f"{model_path} does not match the {self.cfg.TRAINER.NAME} adapter built from this config: "
                    f"missing keys {missing}, unexpected keys {unexpected}. Use the trainer config the checkpoint "
                    "was trained with."
                )
