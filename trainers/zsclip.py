"""Zero-shot CLIP (CoOp's ZeroshotCLIP): one hand-written prompt per dataset, nothing trained."""
from harness.clip_trainer import CLIPAdapterTrainer
from harness.config import register_trainer_node
from harness.data.coop_dataset import zeroshot_template
from harness.engine import TRAINER_REGISTRY

# CoOp's zero-shot numbers come from CLIP in fp16, as OpenAI's checkpoints are stored.
register_trainer_node("ZSCLIP", {"PREC": "fp16"})


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(CLIPAdapterTrainer):
    config_node = "ZSCLIP"

    def class_prompts(self, classnames):
        template = zeroshot_template(self.cfg.DATASET.NAME)
        prompts = [template.format(name) for name in classnames]
        print(f"Prompts: {prompts}")
        return prompts

    def build_adapter(self, clip):
        return None
