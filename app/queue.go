package app

import (
	"image/color"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/engine"
	"github.com/thepeerdrop/peerdrop/internal/visible"
)

// actions are the buttons a queue item offers in its state.
type actions struct {
	Pause, Resume, Cancel, Retry bool
	Open, ShowInFolder           bool // a received item, done
}

// itemActions says which buttons an item shows: Pause while running,
// Resume while paused, Cancel until it is finished, Retry for a send that
// failed, was cancelled or declined, Open and Show in folder for what
// arrived (Open when it is one file or folder).
func itemActions(it engine.Item) actions {
	var a actions
	switch it.State {
	case engine.StateRunning:
		a.Pause, a.Cancel = true, true
	case engine.StatePaused:
		a.Resume, a.Cancel = true, true
	case engine.StateConnecting, engine.StateWaiting:
		a.Cancel = true
	case engine.StateFailed, engine.StateCancelled, engine.StateDeclined:
		a.Retry = it.Direction == engine.Outgoing
	case engine.StateDone:
		if it.Direction == engine.Incoming && len(it.Paths) > 0 {
			a.ShowInFolder = true
			a.Open = len(it.Paths) == 1
		}
	}
	return a
}

// coalescer holds item changes between the engine's goroutines and the
// Fyne thread: the latest version of each item wins.
type coalescer struct {
	mu        sync.Mutex
	pending   map[string]engine.Item
	order     []string           // pending ids, first change first
	shown     map[string]shownAs // what of each item was last added
	scheduled bool
}

// shownAs is what of an item people notice when it changes: its state, and
// the verification code the sender compares while the answer is awaited.
type shownAs struct {
	state engine.State
	code  string
}

// add keeps it for the next take and says whether to flush now (a new item,
// a new state or a new code: people notice those) or to schedule a flush
// (progress, when none is scheduled yet).
func (c *coalescer) add(it engine.Item) (now, schedule bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[string]engine.Item{}
		c.shown = map[string]shownAs{}
	}
	if _, ok := c.pending[it.ID]; !ok {
		c.order = append(c.order, it.ID)
	}
	c.pending[it.ID] = it
	last, seen := c.shown[it.ID]
	cur := shownAs{it.State, it.Code}
	c.shown[it.ID] = cur
	if !seen || last != cur {
		return true, false
	}
	if c.scheduled {
		return false, false
	}
	c.scheduled = true
	return false, true
}

// take returns the pending changes, oldest first, and forgets them.
func (c *coalescer) take() []engine.Item {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]engine.Item, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.pending[id])
	}
	clear(c.pending)
	c.order = c.order[:0]
	c.scheduled = false
	return out
}

// queueView is the list of transfers, both directions: what moves first,
// then what waits, then the history, newest first (queueLess).
type queueView struct {
	u     *UI
	items []engine.Item
	index map[string]int
	seq   map[string]int // by item id: higher came later
	next  int
	list  *widget.List
	rows  []*queueRow // every row the list made (it reuses them)
	clear *widget.Button
	empty fyne.CanvasObject

	content fyne.CanvasObject
}

func newQueueView(u *UI) *queueView {
	q := &queueView{u: u, index: map[string]int{}, seq: map[string]int{}}
	q.list = widget.NewList(
		func() int { return len(q.items) },
		func() fyne.CanvasObject {
			r := newQueueRow(q)
			q.rows = append(q.rows, r)
			return r
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i < len(q.items) {
				o.(*queueRow).bind(q.items[i])
			}
		})
	q.list.OnSelected = func(widget.ListItemID) { q.list.UnselectAll() }

	title := widget.NewLabelWithStyle("Transfers", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameSubHeadingText
	q.clear = widget.NewButtonWithIcon("Clear finished", theme.ContentClearIcon(), func() {
		if eng, ok := q.u.engine(); ok {
			eng.ClearFinished()
		}
	})
	header := container.NewBorder(nil, nil, nil, container.NewCenter(q.clear), title)
	header = container.New(layout.NewCustomPaddedLayout(4, 0, 8, 8), header)

	emptyTitle := widget.NewLabelWithStyle("No transfers yet", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	emptySub := newMuted("Files you send and receive show up here, with their progress.",
		theme.SizeNameText, fyne.TextAlignCenter)
	q.empty = centred(emptyTitle, emptySub)

	q.content = container.NewBorder(container.NewVBox(header, widget.NewSeparator()), nil, nil, nil,
		container.NewStack(q.list, q.empty))
	q.refresh()
	return q
}

// setItems replaces the queue (the engine's history at start, newest first).
func (q *queueView) setItems(items []engine.Item) {
	q.items = slices.Clone(items)
	for i := len(q.items) - 1; i >= 0; i-- {
		q.note(q.items[i].ID)
	}
	q.sort()
	q.reindex()
	q.refresh()
}

// note gives an item its place in arrival order, once.
func (q *queueView) note(id string) {
	if _, ok := q.seq[id]; !ok {
		q.next++
		q.seq[id] = q.next
	}
}

// queueRank groups items: moving (running, paused), then waiting
// (connecting, waiting for an answer), then finished.
func queueRank(s engine.State) int {
	switch {
	case s == engine.StateRunning || s == engine.StatePaused:
		return 0
	case s.Finished():
		return 2
	}
	return 1
}

// sort puts the items in the order queueView shows them: by rank, the
// newest first in each (finished ones by when they finished).
func (q *queueView) sort() {
	slices.SortStableFunc(q.items, func(a, b engine.Item) int {
		if ra, rb := queueRank(a.State), queueRank(b.State); ra != rb {
			return ra - rb
		}
		if a.State.Finished() && !a.Finished.Equal(b.Finished) {
			return b.Finished.Compare(a.Finished)
		}
		return q.seq[b.ID] - q.seq[a.ID]
	})
}

// upsert adds a new item or updates the one with its id, and keeps the order.
func (q *queueView) upsert(it engine.Item) {
	if i, ok := q.index[it.ID]; ok {
		old := q.items[i]
		q.items[i] = it
		if queueRank(old.State) == queueRank(it.State) && old.Finished.Equal(it.Finished) {
			q.list.RefreshItem(i) // progress: the order stays
			if old.State.Finished() != it.State.Finished() {
				q.updateClear()
			}
			return
		}
	} else {
		q.note(it.ID)
		q.items = append(q.items, it)
	}
	q.sort()
	q.reindex()
	q.refresh()
}

// removeFinished drops finished items (the engine cleared them).
func (q *queueView) removeFinished() {
	q.items = slices.DeleteFunc(q.items, func(it engine.Item) bool { return it.State.Finished() })
	q.reindex()
	q.refresh()
}

func (q *queueView) reindex() {
	clear(q.index)
	for i, it := range q.items {
		q.index[it.ID] = i
	}
}

func (q *queueView) refresh() {
	if len(q.items) == 0 {
		q.list.Hide()
		q.empty.Show()
	} else {
		q.empty.Hide()
		q.list.Show()
	}
	q.list.Refresh()
	q.updateClear()
}

func (q *queueView) updateClear() {
	if slices.ContainsFunc(q.items, func(it engine.Item) bool { return it.State.Finished() }) {
		q.clear.Enable()
	} else {
		q.clear.Disable()
	}
}

// active counts the items not finished.
func (q *queueView) active() int {
	n := 0
	for _, it := range q.items {
		if !it.State.Finished() {
			n++
		}
	}
	return n
}

// rowFor is the row showing an item now, if the list shows it.
func (q *queueView) rowFor(id string) *queueRow {
	for _, r := range q.rows {
		if r.item.ID == id && r.Visible() {
			return r
		}
	}
	return nil
}

// act calls an engine verb on an item and shows its error.
func (q *queueView) act(verb string, fn func(Engine, string) error, it engine.Item) {
	eng, ok := q.u.engine()
	if !ok {
		return
	}
	if err := fn(eng, it.ID); err != nil {
		q.u.ShowError(wrapf(err, "could not %s %q", verb, it.Title))
	}
}

// queueRow shows one item.
type queueRow struct {
	widget.BaseWidget
	q    *queueView
	item engine.Item

	dir    *widget.Icon
	title  *widget.Label
	state  *widget.Label
	detail *widget.Label
	bar    *thinBar

	pause, resume, cancel, retry, open, show *widget.Button
}

func newQueueRow(q *queueView) *queueRow {
	r := &queueRow{q: q}
	r.dir = widget.NewIcon(theme.UploadIcon())
	r.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	r.title.Truncation = fyne.TextTruncateEllipsis
	r.state = widget.NewLabel("")
	r.detail = widget.NewLabel("")
	r.detail.Truncation = fyne.TextTruncateEllipsis
	r.detail.SizeName = theme.SizeNameCaptionText
	r.bar = newThinBar()

	btn := func(label string, icon fyne.Resource, fn func()) *widget.Button {
		b := widget.NewButtonWithIcon(label, icon, fn)
		b.Importance = widget.LowImportance
		return b
	}
	r.pause = btn("Pause", theme.MediaPauseIcon(), func() { q.act("pause", Engine.Pause, r.item) })
	r.resume = btn("Resume", theme.MediaPlayIcon(), func() { q.act("resume", Engine.Resume, r.item) })
	r.cancel = btn("Cancel", theme.CancelIcon(), func() { q.act("cancel", Engine.Cancel, r.item) })
	r.retry = btn("Retry", theme.ViewRefreshIcon(), func() { q.act("retry", Engine.Retry, r.item) })
	r.open = btn("Open", theme.FileIcon(), func() {
		if len(r.item.Paths) > 0 {
			q.u.openPath(r.item.Paths[0])
		}
	})
	r.show = btn("Show in folder", theme.FolderOpenIcon(), func() {
		if len(r.item.Paths) > 0 {
			q.u.openPath(filepath.Dir(r.item.Paths[0]))
		}
	})
	r.ExtendBaseWidget(r)
	return r
}

func (r *queueRow) CreateRenderer() fyne.WidgetRenderer {
	buttons := container.NewHBox(r.pause, r.resume, r.cancel, r.retry, r.open, r.show)
	top := container.NewBorder(nil, nil, nil, r.state, r.title)
	text := container.New(layout.NewCustomPaddedVBoxLayout(-theme.Padding()*2.5), top, r.detail)
	center := container.NewBorder(nil, container.New(layout.NewCustomPaddedLayout(0, 4, theme.Padding(), theme.Padding()), r.bar), nil, nil, text)
	row := container.NewBorder(nil, nil,
		container.NewCenter(container.New(layout.NewCustomPaddedLayout(0, 0, 4, 0), r.dir)),
		nil, newWithTrailing(160, center, buttons, iconTwins(buttons))) // icons only when narrow
	return widget.NewSimpleRenderer(row)
}

// bind shows it in the row.
func (r *queueRow) bind(it engine.Item) {
	r.item = it
	if it.Direction == engine.Incoming {
		r.dir.SetResource(theme.DownloadIcon())
	} else {
		r.dir.SetResource(theme.UploadIcon())
	}
	r.title.SetText(cmpTitle(it))

	r.state.Text = stateText(it)
	switch it.State {
	case engine.StateFailed:
		r.state.Importance = widget.DangerImportance
	case engine.StateRunning:
		r.state.Importance = widget.HighImportance
	default:
		r.state.Importance = widget.MediumImportance
	}
	r.state.Refresh()

	if it.Error != "" {
		r.detail.Text = errorLine(it)
		r.detail.Importance = widget.DangerImportance
	} else {
		r.detail.Text = itemDetail(it)
		r.detail.Importance = widget.MediumImportance
	}
	if it.State.Finished() && !it.Finished.IsZero() {
		r.detail.Text += " · " + whenText(it.Finished, time.Now())
	}
	r.detail.Refresh()

	r.bar.set(progress(it), it.State)
	if it.State.Finished() {
		r.bar.Hide()
	} else {
		r.bar.Show()
	}

	a := itemActions(it)
	showIf(r.pause, a.Pause)
	showIf(r.resume, a.Resume)
	showIf(r.cancel, a.Cancel)
	showIf(r.retry, a.Retry)
	showIf(r.open, a.Open)
	showIf(r.show, a.ShowInFolder)
	r.Refresh() // lay the row out again: buttons came and went
}

func cmpTitle(it engine.Item) string {
	if it.Title != "" {
		return visible.Escape(it.Title)
	}
	return plural(it.Files, "file")
}

// errorLine is the detail line of an item with an error.
func errorLine(it engine.Item) string {
	who := "to " + peerName(it.Peer)
	if it.Direction == engine.Incoming {
		who = "from " + peerName(it.Peer)
	}
	return who + " · " + visible.Escape(it.Error)
}

func showIf(o fyne.CanvasObject, on bool) {
	if on {
		o.Show()
	} else {
		o.Hide()
	}
}

// thinBar is a slim progress bar: a rounded track and its filled part,
// coloured by state.
type thinBar struct {
	widget.BaseWidget
	value float64
	state engine.State
}

func newThinBar() *thinBar {
	b := &thinBar{}
	b.ExtendBaseWidget(b)
	return b
}

func (b *thinBar) set(v float64, s engine.State) {
	if b.value == v && b.state == s {
		return
	}
	b.value, b.state = v, s
	b.Refresh()
}

func (b *thinBar) CreateRenderer() fyne.WidgetRenderer {
	r := &thinBarRenderer{b: b, track: canvas.NewRectangle(color.Transparent), fill: canvas.NewRectangle(color.Transparent)}
	r.Refresh()
	return r
}

type thinBarRenderer struct {
	b           *thinBar
	track, fill *canvas.Rectangle
}

const barHeight = 6

func (r *thinBarRenderer) MinSize() fyne.Size { return fyne.NewSize(40, barHeight) }

func (r *thinBarRenderer) Layout(size fyne.Size) {
	y := (size.Height - barHeight) / 2
	r.track.Move(fyne.NewPos(0, y))
	r.track.Resize(fyne.NewSize(size.Width, barHeight))
	r.fill.Move(fyne.NewPos(0, y))
	w := float32(r.b.value) * size.Width
	if w > 0 && w < barHeight {
		w = barHeight // a sliver would not look round
	}
	r.fill.Resize(fyne.NewSize(w, barHeight))
	r.fill.Hidden = w == 0
}

func (r *thinBarRenderer) Refresh() {
	th := r.b.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()
	r.track.FillColor = th.Color(theme.ColorNameInputBackground, v)
	r.track.CornerRadius = barHeight / 2
	fill := theme.ColorNamePrimary
	if r.b.state == engine.StatePaused || r.b.state == engine.StateConnecting || r.b.state == engine.StateWaiting {
		fill = theme.ColorNameDisabled
	}
	r.fill.FillColor = th.Color(fill, v)
	r.fill.CornerRadius = barHeight / 2
	r.Layout(r.b.Size())
	r.track.Refresh()
	r.fill.Refresh()
}

func (r *thinBarRenderer) Objects() []fyne.CanvasObject { return []fyne.CanvasObject{r.track, r.fill} }
func (r *thinBarRenderer) Destroy()                     {}
