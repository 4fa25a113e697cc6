//! `image explore IMAGE`: the interactive layer explorer (ratatui). The
//! layers on the left, the selected layer's files on the right (its own
//! changes, or the whole tree up to it) with A/M/D marks and sizes,
//! directories folded and unfolded, a name filter, and a view of the
//! wasted copies by size. Everything it shows comes from the library's
//! explorer; this module only draws and reads keys. Fits 80x24.

use std::collections::HashSet;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;
use strata::explore::index::Kind;
use strata::explore::view::{FileRow, ImageFiles, Mark};
use strata::explore::ImageLayers;
use strata::Engine;

use crate::format::human_size;

#[derive(Args)]
pub(crate) struct ExploreArgs {
    image: String,
}

pub(crate) fn explore(engine: &Engine, a: ExploreArgs) -> Result<ExitCode> {
    let (layers, files) = engine.explorer().open(&a.image)?;
    // Everything is read: no store lock is needed while the user looks.
    engine.unlock();
    let mut app = App::new(a.image, layers, files);
    let mut terminal = ratatui::init();
    let r = app.run(&mut terminal);
    ratatui::restore();
    r?;
    Ok(ExitCode::SUCCESS)
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Pane {
    Layers,
    Files,
}

/// A line of the file tree as drawn.
struct Shown {
    path: String,
    depth: usize,
    dir: bool,
    size: u64,
    mark: Option<Mark>,
}

struct App {
    name: String,
    analysis: ImageLayers,
    files: ImageFiles,
    /// The rows of `analysis` that are layers: (layer number, label).
    layers: Vec<(usize, String)>,
    layer_state: ListState,
    file_state: ListState,
    pane: Pane,
    /// The whole tree up to the layer, or only its changes.
    all: bool,
    filter: String,
    editing_filter: bool,
    folded: HashSet<String>,
    wasted: bool,
    help: bool,
    rows: Vec<FileRow>,
    shown: Vec<Shown>,
}

impl App {
    fn new(name: String, analysis: ImageLayers, files: ImageFiles) -> Self {
        let layers: Vec<(usize, String)> = analysis
            .rows
            .iter()
            .filter_map(|r| r.layer.map(|i| (i, format!("{i:>2} {:>8}  {}", human_size(r.changes.size), r.created_by))))
            .collect();
        let mut app = App {
            name,
            analysis,
            files,
            layers,
            layer_state: ListState::default().with_selected(Some(0)),
            file_state: ListState::default().with_selected(Some(0)),
            pane: Pane::Layers,
            all: false,
            filter: String::new(),
            editing_filter: false,
            folded: HashSet::new(),
            wasted: false,
            help: false,
            rows: Vec::new(),
            shown: Vec::new(),
        };
        app.load_rows();
        app
    }

    fn layer(&self) -> Option<usize> {
        self.layer_state.selected().and_then(|i| self.layers.get(i)).map(|l| l.0)
    }

    fn load_rows(&mut self) {
        self.rows = match self.layer() {
            Some(l) if !self.files.is_empty() => self.files.rows(l, self.all),
            _ => Vec::new(),
        };
        self.reshape();
    }

    /// The drawn tree: parents added, folded directories' contents and
    /// paths not matching the filter left out.
    fn reshape(&mut self) {
        let mut entries: std::collections::BTreeMap<Vec<String>, (bool, u64, Option<Mark>)> = Default::default();
        for r in &self.rows {
            if !self.filter.is_empty() && !r.path.contains(&self.filter) {
                continue;
            }
            let parts: Vec<String> = r.path.split('/').map(str::to_string).collect();
            for k in 1..parts.len() {
                entries.entry(parts[..k].to_vec()).or_insert((true, 0, None));
            }
            entries.insert(parts, (r.kind == Kind::Dir, r.size, r.mark));
        }
        self.shown = entries
            .into_iter()
            .filter(|(parts, _)| (1..parts.len()).all(|k| !self.folded.contains(&parts[..k].join("/"))))
            .map(|(parts, (dir, size, mark))| Shown { path: parts.join("/"), depth: parts.len() - 1, dir, size, mark })
            .collect();
        let sel = self.file_state.selected().unwrap_or(0).min(self.shown.len().saturating_sub(1));
        self.file_state.select(Some(sel));
    }

    fn run(&mut self, terminal: &mut ratatui::DefaultTerminal) -> Result<()> {
        loop {
            terminal.draw(|f| self.draw(f))?;
            let Event::Key(k) = event::read()? else { continue };
            if k.kind != KeyEventKind::Press {
                continue;
            }
            if self.editing_filter {
                match k.code {
                    KeyCode::Enter => self.editing_filter = false,
                    KeyCode::Esc => {
                        self.editing_filter = false;
                        self.filter.clear();
                    }
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) => self.filter.push(c),
                    _ => {}
                }
                self.reshape();
                continue;
            }
            if self.help {
                self.help = false;
                continue;
            }
            match k.code {
                KeyCode::Char('q') => return Ok(()),
                KeyCode::Esc if self.wasted => self.wasted = false,
                KeyCode::Esc => return Ok(()),
                KeyCode::Char('?') => self.help = true,
                KeyCode::Tab => self.pane = if self.pane == Pane::Layers { Pane::Files } else { Pane::Layers },
                KeyCode::Char('a') => {
                    self.all = !self.all;
                    self.load_rows();
                }
                KeyCode::Char('w') => self.wasted = !self.wasted,
                KeyCode::Char('/') => {
                    self.editing_filter = true;
                    self.pane = Pane::Files;
                }
                KeyCode::Up | KeyCode::Char('k') => self.step(-1),
                KeyCode::Down | KeyCode::Char('j') => self.step(1),
                KeyCode::PageUp => self.step(-10),
                KeyCode::PageDown => self.step(10),
                KeyCode::Enter | KeyCode::Char(' ') if self.pane == Pane::Files => self.fold(),
                _ => {}
            }
        }
    }

    fn step(&mut self, by: isize) {
        let (state, len) = match self.pane {
            Pane::Layers => (&mut self.layer_state, self.layers.len()),
            Pane::Files => (&mut self.file_state, self.shown.len()),
        };
        if len == 0 {
            return;
        }
        let at = state.selected().unwrap_or(0) as isize + by;
        state.select(Some(at.clamp(0, len as isize - 1) as usize));
        if self.pane == Pane::Layers {
            self.file_state.select(Some(0));
            self.load_rows();
        }
    }

    fn fold(&mut self) {
        let Some(s) = self.file_state.selected().and_then(|i| self.shown.get(i)) else { return };
        if !s.dir {
            return;
        }
        let p = s.path.clone();
        if !self.folded.remove(&p) {
            self.folded.insert(p);
        }
        self.reshape();
    }

    fn draw(&mut self, f: &mut Frame) {
        let [top, main, bottom] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)]).areas(f.area());
        let a = &self.analysis;
        f.render_widget(
            Paragraph::new(format!(
                "{}  size {}  wasted {}  efficiency {:.1}%",
                self.name,
                human_size(a.size),
                human_size(a.wasted),
                a.efficiency * 100.0
            )),
            top,
        );
        let [left, right] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(main);
        let focus = |p: Pane| if self.pane == p { Style::new().fg(Color::Cyan) } else { Style::new() };
        let items: Vec<ListItem> = self.layers.iter().map(|l| ListItem::new(l.1.clone())).collect();
        f.render_stateful_widget(
            List::new(items)
                .block(Block::bordered().title("Layers").border_style(focus(Pane::Layers)))
                .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
                .highlight_symbol(">"),
            left,
            &mut self.layer_state,
        );
        if self.wasted {
            self.draw_wasted(f, right);
        } else {
            self.draw_files(f, right, focus(Pane::Files));
        }
        let keys = if self.editing_filter {
            format!("filter: {}_   (Enter keep, Esc clear)", self.filter)
        } else {
            "↑↓ move  Tab pane  Enter fold  a all/changes  / filter  w wasted  ? help  q quit".to_string()
        };
        f.render_widget(Paragraph::new(keys).style(Style::new().add_modifier(Modifier::REVERSED)), bottom);
        if self.help {
            self.draw_help(f, main);
        }
    }

    fn draw_files(&mut self, f: &mut Frame, area: Rect, border: Style) {
        let layer = self.layer().map_or(String::new(), |l| l.to_string());
        let mut title = if self.all { format!("Layer {layer}: whole tree") } else { format!("Layer {layer}: changes") };
        if !self.filter.is_empty() {
            title.push_str(&format!(" [/{}]", self.filter));
        }
        let items: Vec<ListItem> = self
            .shown
            .iter()
            .map(|s| {
                let (m, color) = match s.mark {
                    Some(Mark::Added) => ("A", Color::Green),
                    Some(Mark::Modified) => ("M", Color::Yellow),
                    Some(Mark::Deleted) => ("D", Color::Red),
                    None => (" ", Color::Reset),
                };
                let fold = if self.folded.contains(&s.path) { "+" } else { "" };
                let name = s.path.rsplit('/').next().unwrap_or_default();
                let size = if s.dir { String::new() } else { human_size(s.size) };
                ListItem::new(Line::from(vec![
                    Span::styled(format!("{m} "), Style::new().fg(color)),
                    Span::raw(format!(
                        "{size:>8} {}{name}{}{fold}",
                        "  ".repeat(s.depth),
                        if s.dir { "/" } else { "" }
                    )),
                ]))
            })
            .collect();
        f.render_stateful_widget(
            List::new(items)
                .block(Block::bordered().title(title).border_style(border))
                .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
                .highlight_symbol(">"),
            area,
            &mut self.file_state,
        );
    }

    fn draw_wasted(&self, f: &mut Frame, area: Rect) {
        let mut by_path: std::collections::HashMap<&str, (u64, usize)> = Default::default();
        for h in &self.analysis.hidden {
            let e = by_path.entry(h.path.as_str()).or_default();
            e.0 += h.size;
            e.1 += 1;
        }
        let mut list: Vec<(&str, (u64, usize))> = by_path.into_iter().collect();
        list.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
        let items: Vec<ListItem> =
            list.iter().map(|(p, (size, n))| ListItem::new(format!("{:>8} {n:>3}x /{p}", human_size(*size)))).collect();
        f.render_widget(
            List::new(items).block(Block::bordered().title("Wasted: hidden copies by size (w, Esc: back)")),
            area,
        );
    }

    fn draw_help(&self, f: &mut Frame, area: Rect) {
        let w = area.width.min(60);
        let h = area.height.min(14);
        let at = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
        let text = "↑/↓ or j/k  move in the pane (PgUp/PgDn by 10)\n\
                    Tab         switch between layers and files\n\
                    Enter/Space fold or unfold a directory\n\
                    a           this layer's changes / the whole tree\n\
                    /           filter paths by name (Enter keeps, Esc clears)\n\
                    w           wasted: copies hidden by later layers\n\
                    A M D       added, modified, deleted by the layer\n\
                    q, Esc      quit\n\n\
                    any key closes this help";
        f.render_widget(Clear, at);
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }).block(Block::bordered().title("Keys")), at);
    }
}
