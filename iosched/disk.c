/*
 * iosched/disk.c - the rotational disk model (see disk.h): default
 * parameters with their sources, the seek-curve fit, zoned geometry,
 * rotational position and the read-ahead segment cache.
 */
#include "iosched/disk.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/*
 * Defaults: a circa-2005 7200 RPM ATA desktop disk of 160 GB. Sources:
 *  [7K250]  Hitachi Deskstar 7K250 (2003-2005): average seek 8.5 ms typical,
 *           average latency 4.17 ms, 8 MB buffer, sustained media rate
 *           61.4 MB/s outer zone to 29.7 MB/s inner zone, 80 GB platters
 *           (so 160 GB = 2 platters, 4 heads); as tabulated in The Tech
 *           Report's reviews of the 7K250 and T7K250. Its OEM specification
 *           (Version 1.5, 2004) gives 16 MiB read sequentially with 128
 *           commands in 0.30 s at zone 0 (about 56 MB/s with all overheads).
 *  [7200.7] Seagate Barracuda 7200.7 (2004-2005): average seek 8.5 ms,
 *           average sustained 58 MB/s, 8 MB cache, 160 GB model ST3160021A
 *           with 4 heads, ATA-100 (Red Hill drive history; Tech Report).
 *  [HGST]   Hitachi Deskstar/Travelstar OEM specifications of the same
 *           design family (7K320, 7K500, 5K320): single-track seek 1.0 ms
 *           read typical, full-stroke seek 20.0 ms read typical (the 7K250's
 *           own figure is not in the sources we could read; we take the
 *           family's).
 *  [IBM]    IBM Ultrastar spec sheets (DDRS, 146Z10), section "Command
 *           overhead": under 0.4 ms when the cache is not hit, under 0.03 ms
 *           on a cache hit.
 *  [ATA]    Ultra DMA mode 5 (ATA-100): 100 MB/s buffer-to-host.
 *  [R&W]    C. Ruemmler and J. Wilkes, "An introduction to disk drive
 *           modeling", IEEE Computer 27(3), March 1994: the two-piece seek
 *           curve (square root for short seeks, linear for long), zoned
 *           recording, read-ahead segment caches.
 *  Assumed: 16 cache segments (drives of the time segmented their buffer
 *           adaptively; datasheets do not give a count).
 */
void ios_disk_params_default(struct ios_disk_params *p)
{
	memset(p, 0, sizeof(*p));
	p->kind = IOS_DISK_ROTATIONAL;
	p->capacity_sectors = 160000000000ull / IOS_SECTOR_BYTES; /* [7K250] */
	p->heads = 4;                /* [7K250], [7200.7] */
	p->rpm = 7200;               /* [7K250], [7200.7] */
	p->seek_track_ms = 1.0;      /* [HGST] */
	p->seek_avg_ms = 8.5;        /* [7K250], [7200.7] */
	p->seek_full_ms = 20.0;      /* [HGST] */
	p->media_outer_mb_s = 61.4;  /* [7K250] */
	p->media_inner_mb_s = 29.7;  /* [7K250] */
	p->overhead_miss_ms = 0.4;   /* [IBM] */
	p->overhead_hit_ms = 0.03;   /* [IBM] */
	p->bus_mb_s = 100;           /* [ATA] */
	p->cache_bytes = 8u << 20;   /* [7K250], [7200.7] */
	p->cache_segments = 16;      /* assumed */
	p->readahead = 1;
}

/* ---- seek curve ---- */

/* The curve's coefficients for a given boundary x0 (fractions of the full
 * stroke): one cylinder (x1) costs t1, a full stroke tf, and the pieces
 * meet at x0 with equal value and slope. */
static void seek_coeffs(double x0, double x1, double t1, double tf,
			double *a, double *b, double *c, double *e)
{
	double r0 = sqrt(x0);
	*b = (tf - t1) / (r0 - sqrt(x1) + (1 - x0) / (2 * r0));
	*e = *b / (2 * r0);
	*c = tf - *e;
	*a = t1 - *b * sqrt(x1);
}

/* Mean seek time over uniformly random start and end cylinders: the
 * distance x has density 2(1-x) on [0,1]. Closed form for both pieces. */
static double seek_mean(double x0, double a, double b, double c, double e)
{
	double r0 = sqrt(x0);
	double short_part = a * (2 * x0 - x0 * x0) +
			    b * 2 * (2.0 / 3 * x0 * r0 -
				     2.0 / 5 * x0 * x0 * r0);
	double long_part = c * (1 - x0) * (1 - x0) +
			   e * 2 * (0.5 * (1 - x0 * x0) -
				    1.0 / 3 * (1 - x0 * x0 * x0));
	return short_part + long_part;
}

static double mean_for(double x0, double x1, double t1, double tf)
{
	double a, b, c, e;
	seek_coeffs(x0, x1, t1, tf, &a, &b, &c, &e);
	return seek_mean(x0, a, b, c, e);
}

double ios_disk_mean_seek_ms(const struct ios_disk *d)
{
	return seek_mean(d->seek_x0, d->seek_a, d->seek_b, d->seek_c,
			 d->seek_e);
}

static int finite_pos(double v)
{
	return isfinite(v) && v > 0;
}

int ios_disk_init(struct ios_disk *d, const struct ios_disk_params *p)
{
	memset(d, 0, sizeof(*d));
	if (p->kind != IOS_DISK_ROTATIONAL && p->kind != IOS_DISK_NONE)
		return -EINVAL;
	if (p->capacity_sectors < 1024 || p->capacity_sectors > (1ull << 40))
		return -EINVAL;
	d->p = *p;
	if (p->kind == IOS_DISK_NONE)
		return 0;
	if (p->heads < 1 || p->heads > 64 || !finite_pos(p->rpm) ||
	    p->rpm < 1000 || p->rpm > 30000 || !finite_pos(p->seek_track_ms) ||
	    !finite_pos(p->seek_avg_ms) || !finite_pos(p->seek_full_ms) ||
	    p->seek_full_ms > 1000 || !finite_pos(p->media_outer_mb_s) ||
	    !finite_pos(p->media_inner_mb_s) ||
	    p->media_inner_mb_s > p->media_outer_mb_s ||
	    p->media_outer_mb_s > 10000 || !isfinite(p->overhead_miss_ms) ||
	    p->overhead_miss_ms < 0 || p->overhead_miss_ms > 1000 ||
	    !isfinite(p->overhead_hit_ms) || p->overhead_hit_ms < 0 ||
	    p->overhead_hit_ms > 1000 || !finite_pos(p->bus_mb_s) ||
	    p->cache_segments < 1 || p->cache_segments > IOS_DISK_MAX_SEGMENTS ||
	    p->cache_bytes < (uint64_t)p->cache_segments * IOS_SECTOR_BYTES ||
	    p->cache_bytes > (1ull << 34))
		return -EINVAL;
	if (!(p->seek_track_ms < p->seek_avg_ms &&
	      p->seek_avg_ms < p->seek_full_ms))
		return -EINVAL;

	d->rot_ns = 60e9 / p->rpm;
	d->spt_outer = p->media_outer_mb_s * 1e6 * (d->rot_ns / 1e9) /
		       IOS_SECTOR_BYTES;
	d->spt_inner = p->media_inner_mb_s * 1e6 * (d->rot_ns / 1e9) /
		       IOS_SECTOR_BYTES;
	if (d->spt_inner < 1)
		return -EINVAL;
	double cyl = 2.0 * (double)p->capacity_sectors /
		     (p->heads * (d->spt_outer + d->spt_inner));
	if (cyl < 16 || cyl > 4e9)
		return -EINVAL;
	d->cylinders = (uint32_t)ceil(cyl);
	d->seg_sectors = p->cache_bytes / p->cache_segments / IOS_SECTOR_BYTES;

	/* Fit the boundary x0 so that the mean is the datasheet average. The
	 * mean grows with x0 (more of the stroke on the concave piece). */
	double x1 = 1.0 / (d->cylinders - 1);
	double t1 = p->seek_track_ms, tf = p->seek_full_ms;
	double lo = 2 * x1, hi = 1.0;
	double mlo = mean_for(lo, x1, t1, tf), mhi = mean_for(hi, x1, t1, tf);
	if (!(mlo <= p->seek_avg_ms && p->seek_avg_ms <= mhi))
		return -EINVAL;
	for (int i = 0; i < 200; i++) {
		double mid = 0.5 * (lo + hi);
		if (mean_for(mid, x1, t1, tf) < p->seek_avg_ms)
			lo = mid;
		else
			hi = mid;
	}
	d->seek_x0 = 0.5 * (lo + hi);
	seek_coeffs(d->seek_x0, x1, t1, tf, &d->seek_a, &d->seek_b,
		    &d->seek_c, &d->seek_e);
	return 0;
}

double ios_disk_seek_ns(const struct ios_disk *d, uint32_t dist)
{
	if (dist == 0 || d->p.kind == IOS_DISK_NONE)
		return 0;
	double x = (double)dist / (d->cylinders - 1);
	double ms = x < d->seek_x0 ? d->seek_a + d->seek_b * sqrt(x) :
				     d->seek_c + d->seek_e * x;
	return ms * 1e6;
}

/* ---- zoned geometry ---- */

/* Sectors per track shrink by k per cylinder. */
static double spt_slope(const struct ios_disk *d)
{
	return d->cylinders > 1 ?
		       (d->spt_outer - d->spt_inner) / (d->cylinders - 1) :
		       0;
}

static double spt_at(const struct ios_disk *d, uint32_t c)
{
	return d->spt_outer - spt_slope(d) * c;
}

/* First sector of cylinder c (continuous approximation). */
static double cyl_start(const struct ios_disk *d, uint32_t c)
{
	double k = spt_slope(d);
	return d->p.heads * (d->spt_outer * c - k * (double)c * c / 2);
}

uint32_t ios_disk_cyl(const struct ios_disk *d, uint64_t lba)
{
	if (d->p.kind == IOS_DISK_NONE)
		return 0;
	double k = spt_slope(d), so = d->spt_outer, l = (double)lba;
	double c;
	if (k <= 0) {
		c = l / (d->p.heads * so);
	} else {
		double disc = so * so - 2 * k * l / d->p.heads;
		c = disc <= 0 ? so / k : (so - sqrt(disc)) / k;
	}
	if (!(c >= 0))
		c = 0;
	uint32_t ci = c >= d->cylinders - 1 ? d->cylinders - 1 : (uint32_t)c;
	/* Rounding can leave the estimate one off either way. */
	while (ci > 0 && cyl_start(d, ci) > l)
		ci--;
	while (ci + 1 < d->cylinders && cyl_start(d, ci + 1) <= l)
		ci++;
	return ci;
}

double ios_disk_media_rate(const struct ios_disk *d, uint64_t lba)
{
	return spt_at(d, ios_disk_cyl(d, lba)) * IOS_SECTOR_BYTES /
	       (d->rot_ns / 1e9);
}

/* Time to read one sector in the zone of lba. */
static double sector_ns(const struct ios_disk *d, uint64_t lba)
{
	return d->rot_ns / spt_at(d, ios_disk_cyl(d, lba));
}

/* Angular position of lba, in revolutions [0, 1). */
static double angle_of(const struct ios_disk *d, uint64_t lba)
{
	uint32_t c = ios_disk_cyl(d, lba);
	double r = ((double)lba - cyl_start(d, c)) / spt_at(d, c);
	return r - floor(r);
}

/* Wait from time t until lba is under the head. */
static double rot_wait(const struct ios_disk *d, uint64_t lba, double t)
{
	double now = t / d->rot_ns;
	double w = angle_of(d, lba) - (now - floor(now));
	if (w < 0)
		w += 1;
	return w * d->rot_ns;
}

/* ---- state and cache ---- */

void ios_disk_state_init(struct ios_disk_state *s)
{
	memset(s, 0, sizeof(*s));
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Keeps a segment to its last seg_sectors (it is a ring). */
static void seg_trim(const struct ios_disk *d, struct ios_disk_seg *g)
{
	if (g->end - g->start > d->seg_sectors)
		g->start = g->end - d->seg_sectors;
}

/* Runs the prefetch up to time t (whole sectors only). */
static void stream_advance(const struct ios_disk *d, struct ios_disk_state *s,
			   double t)
{
	if (!s->streaming || t <= s->stream_t)
		return;
	double spn = sector_ns(d, s->stream_pos);
	double n = floor((t - s->stream_t) / spn);
	uint64_t room = s->stream_limit - s->stream_pos;
	uint64_t adv = n >= (double)room ? room : (uint64_t)n;
	s->stream_pos += adv;
	s->stream_t += (double)adv * spn;
	struct ios_disk_seg *g = &s->seg[s->active];
	if (s->stream_pos > g->end)
		g->end = s->stream_pos;
	seg_trim(d, g);
	s->cyl = ios_disk_cyl(d, s->stream_pos - 1);
	if (s->stream_pos >= s->stream_limit)
		s->streaming = 0; /* buffer full: the head idles on track */
}

/* The segment holding lba, or -1. The active one wins ties. */
static int seg_find(const struct ios_disk_state *s, unsigned nseg,
		    uint64_t lba)
{
	int found = -1;
	for (unsigned i = 0; i < nseg; i++) {
		const struct ios_disk_seg *g = &s->seg[i];
		if (g->valid && g->start <= lba && lba < g->end) {
			if (s->streaming && i == s->active)
				return (int)i;
			found = (int)i;
		}
	}
	return found;
}

static unsigned seg_victim(const struct ios_disk_state *s, unsigned nseg)
{
	unsigned v = 0;
	for (unsigned i = 0; i < nseg; i++) {
		if (!s->seg[i].valid)
			return i;
		if (s->seg[i].lru < s->seg[v].lru)
			v = i;
	}
	return v;
}

static uint64_t ceil_ns(double t)
{
	return t <= 0 ? 0 : (uint64_t)ceil(t);
}

/* Positions the head at sector first (seek plus rotation) starting at tcmd
 * and reads up to end; returns when the media transfer ends. */
static double media_read(const struct ios_disk *d, struct ios_disk_state *s,
			 uint64_t first, uint64_t end, double tcmd,
			 struct ios_disk_result *res)
{
	uint32_t to = ios_disk_cyl(d, first);
	uint32_t dist = to > s->cyl ? to - s->cyl : s->cyl - to;
	double seek = ios_disk_seek_ns(d, dist);
	double rot = rot_wait(d, first, tcmd + seek);
	double xfer = (double)(end - first) * sector_ns(d, first);
	res->seek_cyls = dist;
	res->seek_ns = ceil_ns(seek);
	res->rot_ns = ceil_ns(rot);
	if (dist)
		s->st.seeks++;
	s->st.seek_ns += res->seek_ns;
	s->st.rot_ns += res->rot_ns;
	s->cyl = ios_disk_cyl(d, end - 1);
	return tcmd + seek + rot + xfer;
}

int ios_disk_access(const struct ios_disk *d, struct ios_disk_state *s,
		    const struct ios_disk_io *io, uint64_t now_ns,
		    struct ios_disk_result *res)
{
	const struct ios_disk_params *p = &d->p;
	if (io->count == 0 || io->sector >= p->capacity_sectors ||
	    io->count > p->capacity_sectors - io->sector)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	uint64_t t0 = now_ns > s->busy_until ? now_ns : s->busy_until;
	res->start_ns = t0;
	if (io->write)
		s->st.writes++;
	else
		s->st.reads++;
	s->st.sectors += io->count;
	if (p->kind == IOS_DISK_NONE) {
		res->done_ns = t0;
		res->how = IOS_DISK_NOWAIT;
		s->busy_until = t0;
		return 0;
	}

	const unsigned nseg = p->cache_segments;
	const uint64_t first = io->sector, end = io->sector + io->count;
	const double bus_sector_ns = IOS_SECTOR_BYTES / (p->bus_mb_s * 1e6) *
				     1e9;
	const double host_ns = io->count * bus_sector_ns;
	double t = (double)t0, done;
	s->lru_clock++;
	stream_advance(d, s, t);

	if (io->write) {
		/* Write cache off: straight to the media; drop overlaps. */
		s->streaming = 0;
		for (unsigned i = 0; i < nseg; i++) {
			struct ios_disk_seg *g = &s->seg[i];
			if (g->valid && g->start < end && first < g->end)
				g->valid = 0;
		}
		double tcmd = t + p->overhead_miss_ms * 1e6;
		done = media_read(d, s, first, end, tcmd, res);
		if (done < t + p->overhead_miss_ms * 1e6 + host_ns)
			done = t + p->overhead_miss_ms * 1e6 + host_ns;
		res->how = IOS_DISK_MEDIA;
		goto out;
	}

	struct ios_disk_seg *act = &s->seg[s->active];
	if (s->streaming && act->valid && first >= act->start &&
	    first < s->stream_limit) {
		/* The prefetch has read it or is about to. */
		uint64_t lim = min_u64(p->capacity_sectors,
				       end + d->seg_sectors);
		if (lim > s->stream_limit)
			s->stream_limit = lim;
		double tm = t;
		if (end > s->stream_pos)
			tm = s->stream_t + (double)(end - s->stream_pos) *
						   sector_ns(d, s->stream_pos);
		done = t + p->overhead_hit_ms * 1e6 + host_ns;
		if (tm + bus_sector_ns > done)
			done = tm + bus_sector_ns;
		act->lru = s->lru_clock;
		if (end <= s->stream_pos) {
			res->how = IOS_DISK_HIT;
			s->st.cache_hits++;
		} else {
			res->how = IOS_DISK_STREAM;
			s->st.stream_hits++;
		}
		goto out;
	}

	int gi = seg_find(s, nseg, first);
	if (gi >= 0 && end <= s->seg[gi].end) {
		done = t + p->overhead_hit_ms * 1e6 + host_ns;
		s->seg[gi].lru = s->lru_clock;
		res->how = IOS_DISK_HIT;
		s->st.cache_hits++;
		goto out;
	}

	/* A miss (or a cached prefix and the rest from the media). */
	s->streaming = 0;
	uint64_t from = gi >= 0 ? s->seg[gi].end : first;
	double tcmd = t + p->overhead_miss_ms * 1e6;
	double media_end = media_read(d, s, from, end, tcmd, res);
	done = media_end + bus_sector_ns;
	if (done < tcmd + host_ns)
		done = tcmd + host_ns;
	unsigned si = gi >= 0 ? (unsigned)gi : seg_victim(s, nseg);
	struct ios_disk_seg *g = &s->seg[si];
	if (gi < 0)
		g->start = first;
	g->end = end;
	g->valid = 1;
	g->lru = s->lru_clock;
	seg_trim(d, g);
	res->how = IOS_DISK_MEDIA;
	s->st.misses++;
	if (p->readahead && end < p->capacity_sectors) {
		s->streaming = 1;
		s->active = si;
		s->stream_pos = end;
		s->stream_t = media_end;
		s->stream_limit = min_u64(p->capacity_sectors,
					  end + d->seg_sectors);
	}
out:
	res->done_ns = ceil_ns(done);
	s->busy_until = res->done_ns;
	return 0;
}
