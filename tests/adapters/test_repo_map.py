"""The repository map: files and top-level symbols, ranked by relevance to the ticket, under a token budget."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conveyor.adapters.agents.repo_map import (
    build_repo_map,
    estimate_tokens,
    file_symbols,
    list_files,
    python_symbols,
    rank_files,
    terms,
)
from tests.conftest import git

INVOICE = '''"""Invoices."""
from dataclasses import dataclass


@dataclass
class Invoice(Base):
    lines: list[int]

    def total(self) -> int:
        return sum(self.lines)

    def add_line(self, amount: int) -> None:
        self.lines.append(amount)

    def _check(self) -> None:
        pass


def render_invoice(inv: Invoice, *, currency: str = "EUR") -> str:
    return f"{inv.total()} {currency}"


async def send_invoice(inv: Invoice) -> None:
    pass


def _private_helper() -> None:
    pass
'''

CART_TS = """import { Item } from "./item";

export interface Item {
  name: string;
}

export class Cart {
  items: Item[] = [];
}

export function addItem(cart: Cart, item: Item): Cart {
  return cart;
}

export const EMPTY_CART = new Cart();
export type CartId = string;
function helper(x: number) { return x; }
"""

FILES = {
    "src/billing/invoice.py": INVOICE,
    "src/users/account.py": "class Account:\n    def login(self, password: str) -> bool:\n        return True\n",
    "src/users/profile.py": "def show_profile(user_id: int) -> str:\n    return ''\n",
    "web/src/cart.ts": CART_TS,
    "main.go": "package main\n\ntype Server struct {\n}\n\nfunc (s *Server) Start(port int) error {\n}\n\n"
    "func main() {\n}\n",
    "src/lib.rs": "pub struct Parser {\n}\n\nimpl Parser {\n}\n\npub fn parse(input: &str) -> Result<(), Error> {\n}\n",
    "App.java": "public class App {\n    public static void main(String[] args) {\n    }\n}\n",
    "README.md": "# Shop\n",
    "docs/guide.md": "How to invoice customers.\n",
    "broken.py": "def oops(:\n",
}


def _write(root: Path) -> None:
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "blob.dat").write_bytes(b"abc\x00def")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("map") / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    _write(root)
    (root / ".gitignore").write_text("ignored/\n")
    (root / "ignored").mkdir()
    (root / "ignored" / "big.py").write_text("def ignored_function() -> None: ...\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    return root


def test_python_symbols_show_classes_with_methods_and_function_signatures() -> None:
    assert python_symbols(INVOICE) == [
        "class Invoice(Base): total, add_line",
        "def render_invoice(inv: Invoice, *, currency: str='EUR') -> str",
        "async def send_invoice(inv: Invoice) -> None",
    ]
    assert python_symbols("def oops(:\n") == []


def test_typescript_go_rust_java_symbols() -> None:
    assert file_symbols("web/src/cart.ts", CART_TS) == [
        "interface Item",
        "class Cart",
        "addItem (cart: Cart, item: Item)",
        "EMPTY_CART",
        "type CartId",
        "helper (x: number)",
    ]
    assert file_symbols("main.go", FILES["main.go"]) == ["Server struct", "(s *Server) Start (port int)", "main ()"]
    assert file_symbols("src/lib.rs", FILES["src/lib.rs"]) == ["struct Parser", "impl Parser", "parse (input: &str)"]
    assert file_symbols("App.java", FILES["App.java"]) == ["class App", "main"]
    assert file_symbols("README.md", "# x") == []


def test_git_listing_skips_binary_and_ignored_files(repo: Path) -> None:
    files = list_files(repo)
    assert "src/billing/invoice.py" in files and ".gitignore" in files
    assert "logo.png" not in files and "blob.dat" not in files
    assert "ignored/big.py" not in files
    assert files == sorted(files)


def test_walk_listing_without_git_skips_tool_directories(repo: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    _write(plain)
    for skipped in (".venv/lib/x.py", "node_modules/pkg/index.js", "src/__pycache__/a.py", ".conveyor/lease", ".git/x"):
        (plain / skipped).parent.mkdir(parents=True, exist_ok=True)
        (plain / skipped).write_text("x = 1\n")
    files = list_files(plain)
    assert files == sorted(FILES)
    assert list_files(plain, exclude=["docs/*", "*.java"]) == sorted(set(FILES) - {"docs/guide.md", "App.java"})


def test_ranking_puts_relevant_files_first(repo: Path) -> None:
    result = build_repo_map(repo, query="Invoice total is wrong after add_line", token_budget=4000)
    assert result.files[0] == "src/billing/invoice.py"
    login = build_repo_map(repo, query="Account login rejects a valid password", token_budget=4000)
    assert login.files[0] == "src/users/account.py"


def test_a_file_named_in_the_query_comes_first(repo: Path) -> None:
    result = build_repo_map(repo, query="Invoice rounding; see src/users/profile.py", token_budget=4000)
    assert result.files[0] == "src/users/profile.py"
    assert result.files[1] == "src/billing/invoice.py"
    by_name = build_repo_map(repo, query="crash in cart.ts when the cart is empty", token_budget=4000)
    assert by_name.files[0] == "web/src/cart.ts"


def test_ties_are_broken_by_shortness_then_path() -> None:
    ranked = rank_files(["b/zz.py", "a/zz.py", "zz.py", "c/long/zz.py"], {}, "nothing relevant")
    assert ranked == ["zz.py", "a/zz.py", "b/zz.py", "c/long/zz.py"]


def test_the_map_shows_paths_and_indented_symbols(repo: Path) -> None:
    text = build_repo_map(repo, query="invoice", token_budget=4000).text
    assert "characters / 4" in text.splitlines()[0]
    assert "src/billing/invoice.py:\n  class Invoice(Base): total, add_line\n  def render_invoice(" in text
    assert "web/src/cart.ts:\n  interface Item\n  class Cart\n" in text
    assert "\nREADME.md\n" in text  # no symbols: the path alone
    assert "logo.png" not in text


@pytest.mark.parametrize("budget", [40, 60, 100, 150, 250, 400, 4000])
def test_the_budget_is_respected(repo: Path, budget: int) -> None:
    result = build_repo_map(repo, query="invoice cart", token_budget=budget)
    assert result.tokens <= budget
    assert estimate_tokens(result.text) == result.tokens
    shown = set(result.files) | set(result.listed)
    assert len(shown) == len(result.files) + len(result.listed)
    if budget >= 4000:
        assert len(result.files) == result.total_files and not result.listed


def test_a_tight_budget_lists_the_rest_by_path(repo: Path) -> None:
    result = build_repo_map(repo, query="invoice", token_budget=100)
    assert result.files and result.listed
    assert "Other files (paths only):" in result.text
    assert result.files[0] == "src/billing/invoice.py"
    for path in result.listed:
        assert f"\n{path}\n" in result.text


def test_a_budget_too_small_for_anything_gives_an_empty_map(repo: Path) -> None:
    result = build_repo_map(repo, query="invoice", token_budget=5)
    assert result.text == "" and result.files == ()


def test_the_map_is_deterministic(repo: Path, tmp_path: Path) -> None:
    first = build_repo_map(repo, query="Invoice cart login", token_budget=300)
    second = build_repo_map(repo, query="Invoice cart login", token_budget=300)
    assert first == second
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".git", "ignored"))
    assert build_repo_map(copy, query="Invoice cart login", token_budget=300).text == first.text


def test_terms_split_camel_and_snake_case() -> None:
    assert terms("renderInvoice add_line HTTPServer the a") == {
        "renderinvoice",
        "render",
        "invoice",
        "line",
        "httpserver",
        "http",
        "server",
    }
