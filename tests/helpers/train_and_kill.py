"""Run course training in this process and SIGKILL it at a chosen point (used by test_interruptions).

    python train_and_kill.py PROFILES OUTPUT mid-run K  # killed right after optimizer step K
    python train_and_kill.py PROFILES OUTPUT mid-save K # killed while writing checkpoint-K (optimizer file half written)
    python train_and_kill.py PROFILES OUTPUT enospc K   # the disk fills up while checkpoint-K is written (the CLI's error)

PROFILES is a profiles YAML file; its `smoke` profile is trained. The test resumes what is left in its own process.
"""
import os
import signal
import sys
from pathlib import Path

from transformers import Trainer, TrainerCallback

from course_utils.profiles import get_profile
from course_utils.train import train


def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


profiles, output, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
at = int(sys.argv[4]) if len(sys.argv) > 4 else None
callbacks = []
if mode == "mid-run":
    class KillAfterStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == at:
                die()
    callbacks.append(KillAfterStep())
elif mode == "mid-save":
    original = Trainer._save_optimizer_and_scheduler

    def save_then_die(self, output_dir):
        original(self, output_dir)
        if self.state.global_step == at:
            optimizer_file = Path(output_dir) / "optimizer.pt"
            data = optimizer_file.read_bytes()
            optimizer_file.write_bytes(data[: len(data) // 2])  # the write got halfway
            die()
    Trainer._save_optimizer_and_scheduler = save_then_die

elif mode == "enospc":
    import errno

    original = Trainer._save_optimizer_and_scheduler

    def save_until_full(self, output_dir):
        if self.state.global_step == at:
            (Path(output_dir) / "optimizer.pt").write_bytes(b"\0" * 1000)  # part of it got written
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, output_dir)
    Trainer._save_optimizer_and_scheduler = save_until_full
    from course_utils.train import main

    main(["--profiles", profiles, "--profile", "smoke", "--output", str(output)])

train(get_profile("smoke", profiles), output, callbacks=callbacks, progress=lambda m: None)  # killed on the way
