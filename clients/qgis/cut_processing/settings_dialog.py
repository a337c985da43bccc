"""Settings: the list of servers, each with an optional QGIS authentication configuration."""

from __future__ import annotations

from qgis.gui import QgsAuthConfigSelect
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .server import Server, load_servers, save_servers

AUTH_MODES = [
    ("auto", "As configured (Basic; API Header on QGIS 3.26+)"),
    ("bearer", "Bearer token (password of the configuration)"),
    ("header:X-API-Key", "API key in X-API-Key (password of the configuration)"),
]


class ServersDialog(QDialog):
    """Edit the servers; secrets are chosen as auth configurations, never typed in here."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("OGC API Processes servers")
        self.servers: list[Server] = load_servers()
        self.list = QListWidget()
        self.name = QLineEdit()
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://127.0.0.1:5000")
        self.auth = QgsAuthConfigSelect(self)
        self.mode = QComboBox()
        for key, label in AUTH_MODES:
            self.mode.addItem(label, key)
        form = QFormLayout()
        form.addRow("Name (prefix of algorithm ids)", self.name)
        form.addRow("Landing page URL", self.url)
        form.addRow("Authentication", self.auth)
        form.addRow("Send credentials as", self.mode)
        buttons = QHBoxLayout()
        for label, slot in (("Add", self.add), ("Remove", self.remove), ("Apply", self.apply)):
            button = QPushButton(label)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        editor = QWidget()
        editor_layout = QVBoxLayout(editor)
        editor_layout.addLayout(form)
        editor_layout.addLayout(buttons)
        box = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Servers (their processes appear in the Processing toolbox):"))
        layout.addWidget(self.list)
        layout.addWidget(editor)
        layout.addWidget(box)
        self.list.currentRowChanged.connect(self.show_server)
        self.refresh()

    def refresh(self):
        self.list.clear()
        for server in self.servers:
            self.list.addItem(f"{server.name} — {server.url}")
        if self.servers:
            self.list.setCurrentRow(0)

    def show_server(self, row: int):
        if not 0 <= row < len(self.servers):
            return
        server = self.servers[row]
        self.name.setText(server.name)
        self.url.setText(server.url)
        self.auth.setConfigId(server.authcfg)
        index = self.mode.findData(server.auth_mode)
        if index < 0:
            self.mode.addItem(server.auth_mode, server.auth_mode)
            index = self.mode.count() - 1
        self.mode.setCurrentIndex(index)

    def apply(self):
        row = self.list.currentRow()
        if not 0 <= row < len(self.servers):
            return
        self.servers[row] = Server(self.name.text().strip() or "server",
                                   self.url.text().strip(), self.auth.configId(),
                                   self.mode.currentData() or "auto")
        self.refresh()
        self.list.setCurrentRow(row)

    def add(self):
        self.servers.append(Server(f"server{len(self.servers) + 1}", "http://"))
        self.refresh()
        self.list.setCurrentRow(len(self.servers) - 1)

    def remove(self):
        row = self.list.currentRow()
        if 0 <= row < len(self.servers):
            del self.servers[row]
            self.refresh()

    def accept(self):
        self.apply()
        save_servers([s for s in self.servers if s.url.startswith(("http://", "https://"))])
        super().accept()
