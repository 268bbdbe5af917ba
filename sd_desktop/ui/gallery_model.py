"""The list model behind the gallery grid and the strip: a window onto the SQLite index.

rowCount() is the full match count, so the scrollbar is honest about 10,000 images, but
rows are read from the index a page at a time, only when a view asks for them.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from dataclasses import dataclass, replace
from html import escape
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
    Slot,
)

from sd_desktop.gallery import GalleryError, GalleryItem, GalleryStore
from sd_desktop.ui.gallery_thumbs import ThumbnailLoader

ItemRole = Qt.ItemDataRole.UserRole + 1
"""data() role returning the GalleryItem of a row."""
ThumbnailErrorRole = Qt.ItemDataRole.UserRole + 2
"""data() role: why the thumbnail could not be made, or None."""

DEFAULT_PAGE_SIZE = 200
# Pages kept in memory; enough for several screens around the visible one.
_MAX_PAGES = 32
_TOOLTIP_PROMPT_CHARS = 300

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class GalleryFilter:
    """What the model shows. `text` searches prompts; `model` None means every model."""

    text: str = ""
    model: str | None = None
    favourites_only: bool = False
    sort: str = "newest"


class GalleryModel(QAbstractListModel):
    """Rows of GalleryItems matching a GalleryFilter, read lazily in pages."""

    def __init__(
        self,
        store: GalleryStore,
        loader: ThumbnailLoader,
        parent: QObject | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._loader = loader
        self._page_size = max(1, page_size)
        self._filter = GalleryFilter()
        self._total = 0
        self._pages: OrderedDict[int, list[GalleryItem]] = OrderedDict()
        self._rows_by_path: dict[str, int] = {}
        self.pages_read = 0
        """How many pages were read from the index since the last reload (lazy loading)."""
        self._detached = False
        loader.thumbnail_ready.connect(self._on_thumbnail_ready)
        self._total = self._count()

    # ------------------------------------------------------------------ filter

    @property
    def store(self) -> GalleryStore:
        return self._store

    @property
    def filter(self) -> GalleryFilter:
        return self._filter

    def set_store(self, store: GalleryStore) -> None:
        self._store = store
        self._detached = False
        self.reload()

    def detach(self) -> None:
        """Show nothing and stop reading the store, before it closes: views may still
        paint while the window is torn down, and a closed store must not be asked."""
        self.beginResetModel()
        self._detached = True
        self._drop_pages()
        self._total = 0
        self.endResetModel()

    def set_filter(self, gallery_filter: GalleryFilter) -> None:
        if gallery_filter != self._filter:
            self._filter = gallery_filter
            self.reload()

    def update_filter(self, **changes: Any) -> None:
        """set_filter with only some fields changed, e.g. update_filter(text="cat")."""
        self.set_filter(replace(self._filter, **changes))

    @Slot()
    def reload(self) -> None:
        """Re-read the count; rows are read again as the views ask for them."""
        self.beginResetModel()
        self._drop_pages()
        self.pages_read = 0
        self._total = self._count()
        self.endResetModel()

    def _count(self) -> int:
        if self._detached:
            return 0
        f = self._filter
        try:
            return self._store.count(
                text=f.text or None, model=f.model, favourites_only=f.favourites_only
            )
        except (GalleryError, sqlite3.Error):
            return 0

    def _drop_pages(self) -> None:
        self._pages.clear()
        self._rows_by_path.clear()

    # ------------------------------------------------------------------ rows

    def item(self, row: int) -> GalleryItem | None:
        if not 0 <= row < self._total:
            return None
        number, offset = divmod(row, self._page_size)
        page = self._pages.get(number)
        if page is None:
            page = self._read_page(number)
        else:
            self._pages.move_to_end(number)
        return page[offset] if offset < len(page) else None

    def _read_page(self, number: int) -> list[GalleryItem]:
        """Rows of one page; empty when the store cannot answer (closed or failing),
        since this runs inside paint events where an exception helps nobody."""
        if self._detached:
            return []
        f = self._filter
        try:
            page = self._store.query(
                text=f.text or None,
                model=f.model,
                favourites_only=f.favourites_only,
                sort=f.sort,
                limit=self._page_size,
                offset=number * self._page_size,
            )
        except (GalleryError, sqlite3.Error):
            return []
        self.pages_read += 1
        self._pages[number] = page
        first = number * self._page_size
        for i, item in enumerate(page):
            self._rows_by_path[str(item.path)] = first + i
        while len(self._pages) > _MAX_PAGES:
            old_number, old_page = self._pages.popitem(last=False)
            for item in old_page:
                self._rows_by_path.pop(str(item.path), None)
        return page

    def row_of(self, item_id: int) -> int | None:
        """Row of an image among the pages read so far (None when not read or absent)."""
        for number, page in self._pages.items():
            for i, item in enumerate(page):
                if item.id == item_id:
                    return number * self._page_size + i
        return None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else self._total

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self.item(index.row())
        if item is None:
            return None
        if role == ItemRole:
            return item
        if role == Qt.ItemDataRole.DecorationRole:
            return self._loader.pixmap(item.path)
        if role == ThumbnailErrorRole:
            return self._loader.error(item.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(item)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return item.prompt or item.name
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsDragEnabled
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        """Dragging thumbnails drags the PNG files (into the canvas or any other app)."""
        mime = QMimeData()
        items = [self.item(i.row()) for i in indexes]
        mime.setUrls([QUrl.fromLocalFile(str(item.path)) for item in items if item is not None])
        return mime

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # ------------------------------------------------------------------ live updates

    def add_item(self, item: GalleryItem) -> bool:
        """Show a newly saved image if it matches the filter; True when a row was added."""
        f = self._filter
        if not self._store.matches(
            item.id, text=f.text or None, model=f.model, favourites_only=f.favourites_only
        ):
            return False
        row = 0 if f.sort == "newest" else self._total
        self.beginInsertRows(QModelIndex(), row, row)
        self._drop_pages()
        self._total += 1
        self.endInsertRows()
        return True

    def remove_item(self, item_id: int) -> None:
        row = self.row_of(item_id)
        if row is None:
            self.reload()
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        self._drop_pages()
        self._total = max(0, self._total - 1)
        self.endRemoveRows()

    def update_item(self, item: GalleryItem) -> None:
        """A changed image (favourite flag): repaint it, or drop it if it left the filter."""
        row = self.row_of(item.id)
        if row is None:
            return
        if self._filter.favourites_only and not item.favourite:
            self.remove_item(item.id)
            return
        number, offset = divmod(row, self._page_size)
        self._pages[number][offset] = item
        index = self.index(row)
        self.dataChanged.emit(index, index)

    @Slot(str)
    def _on_thumbnail_ready(self, path: str) -> None:
        row = self._rows_by_path.get(path)
        if row is not None and row < self._total:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


def _tooltip(item: GalleryItem) -> str:
    prompt = item.prompt or "(no prompt)"
    if len(prompt) > _TOOLTIP_PROMPT_CHARS:
        prompt = prompt[:_TOOLTIP_PROMPT_CHARS].rstrip() + "…"
    details = [item.created.strftime("%Y-%m-%d %H:%M")]
    if item.model:
        details.append(item.model)
    details.append(f"seed {item.seed}")
    # Rich text on purpose: a prompt starting with "<lora:...>" would otherwise be
    # guessed as HTML and lose its tags; <qt> also makes long prompts wrap.
    return f"<qt>{escape(prompt)}<br><i>{escape(' · '.join(details))}</i></qt>"
