"""Dassl's trainer life-cycle: TrainerBase -> SimpleTrainer -> TrainerX, with the same hooks, order,
checkpoint rules and printed lines."""
import datetime
import os
import time
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from harness import run_clock

from .data_manager import DataManager
from .evaluator import build_evaluator
from .meters import AverageMeter, MetricMeter
from .registry import Registry, build_registered
from .tools import mkdir_if_missing, tolist_if_not
from .torchtools import load_checkpoint, resume_from_checkpoint, save_checkpoint

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg):
    return build_registered(TRAINER_REGISTRY, "trainer", cfg.TRAINER.NAME, cfg.VERBOSE, cfg)


def _summary_writer(log_dir):
    """A tensorboard SummaryWriter, or None when tensorboard is not installed (it is optional here)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=log_dir)


class SplitEvaluation(NamedTuple):
    """One evaluation: the evaluator's results, and per image (in the split's order) its index, label and predicted
    class (`output.max(1)[1]`, as Dassl's evaluator counts), with the k best classes and their logits where
    TEST.PREDICTIONS_TOPK asks for them."""

    split: str
    results: dict
    total: int
    items: list  # the evaluated split's Datums
    index: np.ndarray
    label: np.ndarray
    prediction: np.ndarray
    topk_class: np.ndarray = None
    topk_logit: np.ndarray = None


@torch.no_grad()
def evaluate_split(trainer, split=None):
    """Dassl's SimpleTrainer.test on any trainer of either engine, as a SplitEvaluation.

    The same loop, printed lines and scalars as Dassl's; harness trainers call it to hand the results on.
    """
    trainer.set_model_mode("eval")
    trainer.evaluator.reset()
    split = split or trainer.cfg.TEST.SPLIT
    if split == "val" and trainer.val_loader is not None:
        data_loader = trainer.val_loader
    else:
        split = "test"
        data_loader = trainer.test_loader
    print(f"Evaluate on the *{split}* set")
    run_clock.current().reached_first_step()
    topk = trainer.cfg.TEST.get("PREDICTIONS_TOPK", 0)
    columns = {"index": [], "label": [], "prediction": [], "topk_class": [], "topk_logit": []}
    for batch in tqdm(data_loader):
        image, label = trainer.parse_batch_test(batch)
        output = trainer.model_inference(image)
        trainer.evaluator.process(output, label)
        columns["index"].append(torch.as_tensor(batch["index"]))
        columns["label"].append(label.cpu())
        columns["prediction"].append(output.max(1)[1].cpu())
        if topk:
            logits, classes = output.float().topk(min(topk, output.shape[1]), dim=1)
            columns["topk_class"].append(classes.cpu())
            columns["topk_logit"].append(logits.cpu())
    results = trainer.evaluator.evaluate()
    for key, value in results.items():
        trainer.write_scalar(f"{split}/{key}", value, trainer.epoch)
    arrays = {name: torch.cat(parts).numpy() if parts else None for name, parts in columns.items()}
    return SplitEvaluation(split, results, len(arrays["label"]), data_loader.dataset.data_source, **arrays)


class TrainerBase:
    def __init__(self):
        self._models = OrderedDict()
        self._optims = OrderedDict()
        self._scheds = OrderedDict()
        self._writer = None

    def register_model(self, name="model", model=None, optim=None, sched=None):
        for registry in ("_models", "_optims", "_scheds"):
            if self.__dict__.get(registry) is None:
                raise AttributeError(f"Cannot assign {registry[1:-1]} before super().__init__() call")
        assert name not in self._models, "Found duplicate model names"
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names=None):
        names_real = list(self._models.keys())
        if names is None:
            return names_real
        names = tolist_if_not(names)
        for name in names:
            assert name in names_real
        return names

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name=""):
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            save_checkpoint(
                {
                    "state_dict": self._models[name].state_dict(),
                    "epoch": epoch + 1,
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "val_result": val_result,
                },
                os.path.join(directory, name),
                is_best=is_best,
                model_name=model_name,
            )

    def resume_model_if_exist(self, directory):
        names = self.get_model_names()
        if any(not os.path.exists(os.path.join(directory, name)) for name in names):
            print("No checkpoint found, train from scratch")
            return 0
        print(f"Found checkpoint at {directory} (will resume training)")
        start_epoch = 0
        for name in names:
            start_epoch = resume_from_checkpoint(
                os.path.join(directory, name), self._models[name], self._optims[name], self._scheds[name]
            )
        return start_epoch

    def load_model(self, directory, epoch=None):
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given "
                  "(ignore this if it's done on purpose)")
            return
        model_file = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
        for name in self.get_model_names():
            model_path = os.path.join(directory, name, model_file)
            if not os.path.exists(model_path):
                raise FileNotFoundError(f"No model at {model_path}")
            checkpoint = load_checkpoint(model_path)
            # Dassl formats val_result with :.1f and crashes when it is None; the family's trainers override
            # load_model, so this line is only reached by trainers that register a plain model.
            epoch, val_result = checkpoint["epoch"], checkpoint["val_result"]
            print(f"Load {model_path} to {name} (epoch={epoch}, val_result={val_result:.1f})")
            self._models[name].load_state_dict(checkpoint["state_dict"])

    def set_model_mode(self, mode="train", names=None):
        for name in self.get_model_names(names):
            if mode == "train":
                self._models[name].train()
            elif mode in ("test", "eval"):
                self._models[name].eval()
            else:
                raise KeyError

    def update_lr(self, names=None):
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def detect_anomaly(self, loss):
        if not torch.isfinite(loss).all():
            raise FloatingPointError("Loss is infinite or NaN!")

    def init_writer(self, log_dir):
        if self.__dict__.get("_writer") is None:
            self._writer = _summary_writer(log_dir)
            if self._writer is not None:
                print(f"Initialize tensorboard (log_dir={log_dir})")

    def close_writer(self):
        if self._writer is not None:
            self._writer.close()

    def write_scalar(self, tag, scalar_value, global_step=None):
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)

    def train(self, start_epoch, max_epoch):
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        self.before_train()
        for self.epoch in range(self.start_epoch, self.max_epoch):  # noqa: B020  (Dassl's loop sets the attribute)
            self.before_epoch()
            self.run_epoch()
            self.after_epoch()
        self.after_train()

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_epoch(self):
        pass

    def after_epoch(self):
        pass

    def run_epoch(self):
        raise NotImplementedError

    def test(self):
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def forward_backward(self, batch):
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError

    def model_zero_grad(self, names=None):
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad()

    def model_backward(self, loss):
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names=None):
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].step()

    def model_backward_and_update(self, loss, names=None):
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)


class SimpleTrainer(TrainerBase):
    def __init__(self, cfg):
        super().__init__()
        self.check_cfg(cfg)
        if torch.cuda.is_available() and cfg.USE_CUDA:
            self.device = torch.device("cuda")
        else:
            self.device = torch.device("cpu")
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        self.build_data_loader()
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self.best_result = -np.inf

    def check_cfg(self, cfg):
        pass

    def build_data_loader(self):
        dm = DataManager(self.cfg)
        self.train_loader_x = dm.train_loader_x
        self.train_loader_u = dm.train_loader_u
        self.val_loader = dm.val_loader
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def build_model(self):
        raise NotImplementedError(
            "The bundled engine has no generic backbone models (Dassl's SimpleNet); a trainer must build its own."
        )

    def train(self):
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self):
        directory = self.cfg.RESUME or self.cfg.OUTPUT_DIR
        self.start_epoch = self.resume_model_if_exist(directory)
        writer_dir = os.path.join(self.output_dir, "tensorboard")
        mkdir_if_missing(writer_dir)
        self.init_writer(writer_dir)
        self.time_start = time.time()

    def after_train(self):
        print("Finish training")
        if not self.cfg.TEST.NO_TEST:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                print("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                print("Deploy the last-epoch model")
            self.test()
        elapsed = str(datetime.timedelta(seconds=round(time.time() - self.time_start)))
        print(f"Elapsed: {elapsed}")
        self.close_writer()

    def after_epoch(self):
        last_epoch = (self.epoch + 1) == self.max_epoch
        do_test = not self.cfg.TEST.NO_TEST
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        meet_checkpoint_freq = (self.epoch + 1) % freq == 0 if freq > 0 else False
        if do_test and self.cfg.TEST.FINAL_MODEL == "best_val":
            curr_result = self.test(split="val")
            if curr_result > self.best_result:
                self.best_result = curr_result
                self.save_model(self.epoch, self.output_dir, val_result=curr_result, model_name="model-best.pth.tar")
        if meet_checkpoint_freq or last_epoch:
            self.save_model(self.epoch, self.output_dir)

    def test(self, split=None):
        return list(evaluate_split(self, split).results.values())[0]

    def model_inference(self, input):
        return self.model(input)

    def parse_batch_test(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def get_current_lr(self, names=None):
        name = self.get_model_names(names)[0]
        return self._optims[name].param_groups[0]["lr"]


class TrainerX(SimpleTrainer):
    """Trains on labelled data only (the class every CoOp-family trainer extends)."""

    def run_epoch(self):
        self.set_model_mode("train")
        losses = MetricMeter()
        batch_time = AverageMeter()
        data_time = AverageMeter()
        self.num_batches = len(self.train_loader_x)
        print_freq = self.cfg.TRAIN.PRINT_FREQ

        end = time.time()
        for self.batch_idx, batch in enumerate(self.train_loader_x):  # noqa: B020  (as Dassl's run_epoch)
            data_time.update(time.time() - end)
            loss_summary = self.forward_backward(batch)
            batch_time.update(time.time() - end)
            losses.update(loss_summary)

            if (self.batch_idx + 1) % print_freq == 0 or self.num_batches < print_freq:
                remaining = self.num_batches - self.batch_idx - 1
                remaining += (self.max_epoch - self.epoch - 1) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * remaining)))
                print(" ".join([
                    f"epoch [{self.epoch + 1}/{self.max_epoch}]",
                    f"batch [{self.batch_idx + 1}/{self.num_batches}]",
                    f"time {batch_time.val:.3f} ({batch_time.avg:.3f})",
                    f"data {data_time.val:.3f} ({data_time.avg:.3f})",
                    f"{losses}",
                    f"lr {self.get_current_lr():.4e}",
                    f"eta {eta}",
                ]))

            n_iter = self.epoch * self.num_batches + self.batch_idx
            for name, meter in losses.meters.items():
                self.write_scalar("train/" + name, meter.avg, n_iter)
            self.write_scalar("train/lr", self.get_current_lr(), n_iter)
            end = time.time()

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device), batch["domain"].to(self.device)
