"""The shop's store: products and orders in SQLite (a file, or in memory)."""

import sqlite3
import threading
from typing import Any

PRODUCTS = [
    ("tea", "Green tea", 450, "Loose leaf, 100 g."),
    ("mug", "Mug", 1200, "Stoneware, 300 ml."),
    # a big page, for the bandwidth test: 50 kB of reviews
    ("teapot", "Teapot", 3500, "Cast iron, 1 l. " + "A fine teapot. " * 3400),
]


class OrderStore:
    def __init__(self, path: str = ":memory:") -> None:
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.Lock()
        with self.lock, self.db:
            self.db.executescript(
                """
                CREATE TABLE IF NOT EXISTS products
                    (sku TEXT PRIMARY KEY, name TEXT, price INTEGER, description TEXT);
                CREATE TABLE IF NOT EXISTS orders
                    (id INTEGER PRIMARY KEY, sku TEXT, quantity INTEGER, amount INTEGER,
                     status TEXT, charge TEXT, note TEXT);
                """
            )
            self.db.executemany("INSERT OR IGNORE INTO products VALUES (?, ?, ?, ?)", PRODUCTS)

    def product(self, sku: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT * FROM products WHERE sku = ?", (sku,)).fetchone()
        return dict(row) if row else None

    def add(self, sku: str, quantity: int, amount: int) -> int:
        with self.lock, self.db:
            cursor = self.db.execute(
                "INSERT INTO orders (sku, quantity, amount, status) VALUES (?, ?, ?, 'new')",
                (sku, quantity, amount),
            )
        return int(cursor.lastrowid or 0)

    def settle(self, order_id: int, status: str, charge: str | None, note: str | None) -> None:
        with self.lock, self.db:
            self.db.execute(
                "UPDATE orders SET status = ?, charge = ?, note = ? WHERE id = ?",
                (status, charge, note, order_id),
            )

    def order(self, order_id: int) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        return dict(row) if row else None
