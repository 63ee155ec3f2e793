"""Build the demo repository: `main` holds examples/shop/base, branch `update-shop` the head."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "shop"
AUTHOR = ["-c", "user.name=Demo Author", "-c", "user.email=demo@example.com"]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *AUTHOR, *args], cwd=repo, check=True, capture_output=True)


def commit_tree(repo: Path, tree: Path, message: str) -> None:
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(tree, repo, dirs_exist_ok=True)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)


def build(repo: Path) -> Path:
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    commit_tree(repo, HERE / "base", "shop: web 1.8.0, payment gateway, legacy mailer")
    git(repo, "checkout", "--quiet", "-b", "update-shop")
    commit_tree(repo, HERE / "head", "shop: web 1.9.0, new cart service, retire the mailer")
    git(repo, "checkout", "--quiet", "main")
    return repo


if __name__ == "__main__":
    print(build(Path(sys.argv[1] if len(sys.argv) > 1 else "build/demo-repo")))
