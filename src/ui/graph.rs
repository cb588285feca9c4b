//! History graphs drawn with cairo: one series over time, with limit lines (memory high/max,
//! CPU quota) and event marks on the time axis.

use std::cell::RefCell;
use std::rc::Rc;

use gtk::prelude::*;

use crate::i18n::{gettext, ngettext_f};

/// What one graph shows. Times are seconds before now (0 = now, positive = past).
#[derive(Debug, Clone, Default)]
pub struct GraphData {
    pub points: Vec<(f64, f64)>,
    /// Horizontal lines: (value, label), e.g. the memory.max limit.
    pub lines: Vec<(f64, String)>,
    /// Event marks: (seconds ago, label), e.g. a freeze or an OOM kill.
    pub events: Vec<(f64, String)>,
    /// Seconds of history the x axis spans.
    pub span: f64,
    /// Formats a value for the axis labels ("1.2 GiB", "35 %").
    pub unit: GraphUnit,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GraphUnit {
    #[default]
    Bytes,
    Percent,
}

impl GraphUnit {
    fn format(self, value: f64) -> String {
        match self {
            GraphUnit::Bytes => crate::limits::Bytes(value.max(0.0) as u64).to_string(),
            GraphUnit::Percent => format!("{value:.0} %"),
        }
    }
}

/// A drawing area that renders the latest [`GraphData`] it was given.
#[derive(Clone)]
pub struct Graph {
    pub area: gtk::DrawingArea,
    data: Rc<RefCell<GraphData>>,
}

impl Graph {
    pub fn new(accessible_label: &str, height: i32) -> Graph {
        let area = gtk::DrawingArea::builder()
            .content_height(height)
            .hexpand(true)
            .css_classes(["graph"])
            .build();
        crate::ui::set_accessible_label(&area, accessible_label);
        let data = Rc::new(RefCell::new(GraphData::default()));
        let shared = Rc::clone(&data);
        area.set_draw_func(move |area, cr, width, height| {
            draw(
                area,
                cr,
                f64::from(width),
                f64::from(height),
                &shared.borrow(),
            );
        });
        Graph { area, data }
    }

    pub fn set(&self, data: GraphData) {
        *self.data.borrow_mut() = data;
        self.area.queue_draw();
    }
}

fn draw(
    area: &gtk::DrawingArea,
    cr: &gtk::cairo::Context,
    width: f64,
    height: f64,
    data: &GraphData,
) {
    #[allow(deprecated)] // style_context().color() is the GTK 4.8 way; widget.color() is 4.10+.
    let fg = area.style_context().color();
    let (r, g, b) = (
        f64::from(fg.red()),
        f64::from(fg.green()),
        f64::from(fg.blue()),
    );
    let accent = (0.21, 0.52, 0.89);
    let (left, right, top, bottom) = (4.0, width - 4.0, 14.0, height - 16.0);
    let span = data.span.max(1.0);
    let max_value = data
        .points
        .iter()
        .map(|p| p.1)
        .chain(data.lines.iter().map(|l| l.0))
        .fold(0.0f64, f64::max)
        .max(if data.unit == GraphUnit::Percent {
            100.0
        } else {
            1.0
        })
        * 1.1;
    let x = |ago: f64| right - (ago / span).clamp(0.0, 1.0) * (right - left);
    let y = |v: f64| bottom - (v / max_value).clamp(0.0, 1.0) * (bottom - top);

    // Frame and baseline.
    cr.set_source_rgba(r, g, b, 0.15);
    cr.set_line_width(1.0);
    cr.rectangle(left, top, right - left, bottom - top);
    let _ = cr.stroke();

    // The series, filled below.
    if let Some(&(first_ago, first_value)) = data.points.first() {
        cr.move_to(x(first_ago), y(first_value));
        for &(ago, value) in &data.points[1..] {
            cr.line_to(x(ago), y(value));
        }
        cr.set_source_rgba(accent.0, accent.1, accent.2, 1.0);
        cr.set_line_width(2.0);
        let _ = cr.stroke_preserve();
        if let Some(&(last_ago, _)) = data.points.last() {
            cr.line_to(x(last_ago), bottom);
            cr.line_to(x(first_ago), bottom);
            cr.close_path();
            cr.set_source_rgba(accent.0, accent.1, accent.2, 0.2);
            let _ = cr.fill();
        }
    }

    // Limit lines with their labels.
    cr.set_font_size(10.0);
    for (value, label) in &data.lines {
        cr.set_source_rgba(0.88, 0.11, 0.14, 0.9);
        cr.set_line_width(1.0);
        cr.set_dash(&[4.0, 3.0], 0.0);
        cr.move_to(left, y(*value));
        cr.line_to(right, y(*value));
        let _ = cr.stroke();
        cr.set_dash(&[], 0.0);
        cr.move_to(left + 4.0, y(*value) - 3.0);
        let _ = cr.show_text(&format!("{label} {}", data.unit.format(*value)));
    }

    // Event marks on the time axis.
    for (ago, label) in &data.events {
        cr.set_source_rgba(0.96, 0.61, 0.0, 0.9);
        cr.set_line_width(1.5);
        cr.move_to(x(*ago), top);
        cr.line_to(x(*ago), bottom);
        let _ = cr.stroke();
        cr.move_to(x(*ago) + 2.0, top + 10.0);
        let _ = cr.show_text(label);
    }

    // Axis labels: scale top left, time span bottom.
    cr.set_source_rgba(r, g, b, 0.6);
    cr.move_to(left + 2.0, top - 3.0);
    let _ = cr.show_text(&data.unit.format(max_value / 1.1));
    cr.move_to(left + 2.0, height - 3.0);
    let minutes = (span / 60.0).round().max(0.0) as u64;
    let _ = cr.show_text(&ngettext_f(
        "{n} min ago",
        "{n} min ago",
        minutes,
        &[("n", &minutes)],
    ));
    // Right-aligned, whatever the language makes of it.
    let now = gettext("now");
    let width = cr.text_extents(&now).map_or(20.0, |e| e.x_advance());
    cr.move_to(right - width - 4.0, height - 3.0);
    let _ = cr.show_text(&now);
}
