"""Lines printed while a progress bar may be drawing (the test loop's tqdm bar, on stderr): each lands on a line of
its own instead of after the bar's text."""
import sys


def print_line(line):
    """Print `line` on stdout (the run's log): in this process through tqdm, which clears its bars around it; in a
    DataLoader worker, whose bar is drawn by the main process, after a newline that ends the bar's line."""
    from torch.utils.data import get_worker_info
    from tqdm import tqdm

    if get_worker_info() is not None:
        print(f"\n{line}", flush=True)
        return
    with tqdm.external_write_mode(file=sys.stdout):
        print(line, flush=True)
