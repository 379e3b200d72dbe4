/* The compiled mixer core: mixer.py's Mixer.mix (voices, layers, glides, loops, bends, the
 * stereo bus) and levels.py's MasterBus (master gain, look-ahead limiter) in C, fed by the
 * command ring of protocol.py. One call per audio block (Core.mix); nothing here allocates,
 * locks or calls into Python while mixing.
 *
 * The arithmetic follows mixer.py and levels.py operation for operation (float64 positions,
 * glides and envelopes; float32 signal; the same clamps and limiter segments), so the two agree
 * to float32 rounding. Only the buffer protocol is used (no NumPy C API): the extension builds
 * with a C compiler and the Python headers alone.
 *
 * Every record is checked before it is applied (its sequence stamp, op, slot, channel, entry,
 * frames, finite numbers); a bad one is dropped and counted in the ring header. A write count
 * behind the read count or more than the ring's capacity ahead of it reads as no new records. Samples are read only within
 * an entry's loaded frames, clamped as NumPy's take(mode="clip") does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LAYERS 4 /* mixer.MORPH_LAYERS */
#define MIDI_CHANNELS 16
#define ALL_CHANNELS (-1)
#define NEVER 1e18
#define IMMEDIATE (-1)

enum { OP_NOTE_ON, OP_RELEASE, OP_MORPH, OP_BEND, OP_SILENCE, OP_FADE, OP_GAIN, OP_LOAD, OP_COUNT };
enum { STATUS_ENDED, STATUS_VOICES, STATUS_PEAK, STATUS_LIMITED, STATUS_FIELDS_USED };

/* One command: protocol.RECORD (a test checks the two agree field by field). */
typedef struct {
    int64_t frame;
    int32_t op, slot;
    int64_t serial;
    int32_t note_a, note_b, channel, entry;
    double ratio_a, ratio_b, weight, amp, attack, release, left, right, bend, fade;
    int64_t frames;
    double gain;
    int32_t pitch, sample_rate;
    int64_t loop_start, loop_end;
    int64_t sequence; /* its place in the ring's stream + 1: else truncated or stale */
} Record;

/* protocol.RING_HEADER: each count on a cache line of its own. */
typedef struct {
    int64_t write;
    char pad0[56];
    int64_t read;
    char pad1[56];
    int64_t dropped;
    char pad2[56];
} RingHeader;

typedef struct {
    const int16_t *pcm; /* NULL: nothing loaded */
    int64_t capacity;   /* frames the entry can hold */
    int64_t frames;
    double gain; /* as played: gain × level */
    int32_t sample_rate;
    int64_t loop_start, loop_end; /* loop_end 0: not looped */
} Entry;

typedef struct {
    int active, looped, depth, channel, norder, balanced, unity;
    int64_t serial;
    int entry[LAYERS];
    int order[LAYERS];
    double ratio[LAYERS], length[LAYERS], note_gain[LAYERS];
    double loop_start[LAYERS], loop_length[LAYERS], loop_end[LAYERS], shift[LAYERS];
    double gain_from[LAYERS], gain_to[LAYERS], since_glide[LAYERS];
    double progress0, since_bend, age, attack, release, released_at, amp, bend;
    double since_bus;
    float bus_from[2], bus_to[2], bus_step[2];
} Voice;

typedef struct {
    PyObject_HEAD
    Py_buffer ring, status, ended, arena;
    int has_arena;
    Py_buffer *attached; /* per entry, when there is no arena */
    int *is_attached;
    Entry *entries;
    int n_entries;
    int64_t entry_frames, capacity;
    Voice *voices;
    int slots, channels, chunk, top;
    double rate, glide_frames, inv_glide;
    double channel_bend[MIDI_CHANNELS];
    float channel_gain[MIDI_CHANNELS][2];
    int64_t frames_mixed, ended_count;
    int voices_active;
    /* master bus */
    int has_master;
    double master_gain, limit, release_per_frame, lim_gain;
    int delay;
    int64_t limited_frames;
    float *signal, *delay_line, *magnitude, *frame_bus;
    float *voice_sig, *bus0, *bus1;
    int *sounding;
} Core;

static int is_num(double x) { return isfinite(x); }

/* NumPy's remainder for float64 (npy_divmod): fmod, moved to the divisor's sign. */
static double py_mod(double a, double b) {
    double mod = fmod(a, b);
    if (mod != 0.0) {
        if ((b < 0) != (mod < 0)) mod += b;
    } else {
        mod = copysign(0.0, b);
    }
    return mod;
}

static int entry_ok(Core *c, int32_t e) {
    return e >= 0 && e < c->n_entries && c->entries[e].pcm != NULL;
}

static int channel_ok(int32_t ch) { return ch >= 0 && ch < MIDI_CHANNELS; }

/* Whether a record is well formed (what it names exists, its numbers are finite). */
static int record_ok(Core *c, const Record *r) {
    if (r->frame < IMMEDIATE || r->op < 0 || r->op >= OP_COUNT) return 0;
    int slot_ok = r->slot >= 0 && r->slot < c->slots;
    switch (r->op) {
    case OP_NOTE_ON:
        if (!is_num(r->amp) || !is_num(r->attack) || !is_num(r->release)) return 0;
        if (!channel_ok(r->channel)) return 0;
        /* fall through: the note fields are a morph's */
    case OP_MORPH:
        return slot_ok && entry_ok(c, r->note_a) && is_num(r->ratio_a) && is_num(r->weight) &&
               is_num(r->ratio_b) && (r->note_b == -1 || entry_ok(c, r->note_b));
    case OP_RELEASE:
        return slot_ok;
    case OP_FADE:
        return slot_ok && is_num(r->fade);
    case OP_BEND:
        return channel_ok(r->channel) && is_num(r->bend);
    case OP_GAIN:
        return channel_ok(r->channel) && is_num(r->left) && is_num(r->right);
    case OP_SILENCE:
        return r->channel == ALL_CHANNELS || channel_ok(r->channel);
    case OP_LOAD: {
        if (r->entry < 0 || r->entry >= c->n_entries) return 0;
        int64_t cap = c->has_arena ? c->entry_frames
                                   : (c->is_attached[r->entry] ? c->entries[r->entry].capacity : -1);
        if (r->frames < 0 || r->frames > cap || !is_num(r->gain) || r->sample_rate <= 0) return 0;
        if (r->loop_end == 0 && r->loop_start == 0) return 1;
        return r->loop_start >= 0 && r->loop_start < r->loop_end && r->loop_end <= r->frames;
    }
    }
    return 0;
}

/* -- voices: mixer.Mixer's _apply and helpers ---------------------------------------------- */

static void set_gain_kind(Voice *v) {
    v->balanced = v->bus_to[0] == v->bus_to[1];
    v->unity = v->balanced && v->bus_to[0] == 1.0f;
}

static void end_voice(Core *c, Voice *v) {
    v->balanced = v->unity = 1;
    v->active = 0;
    v->looped = 0;
    v->amp = 0.0;
    double *status = (double *)c->status.buf;
    int64_t *ended = (int64_t *)c->ended.buf;
    Py_ssize_t ring = c->ended.len / (Py_ssize_t)sizeof(int64_t);
    ended[c->ended_count % ring] = v->serial;
    c->ended_count++;
    status[STATUS_ENDED] = (double)c->ended_count;
}

static void set_layer(Core *c, Voice *v, int layer, int e, double ratio) {
    v->loop_start[layer] = 0.0;
    v->loop_length[layer] = 1.0;
    v->loop_end[layer] = INFINITY;
    v->gain_from[layer] = v->gain_to[layer] = 0.0;
    if (e < 0) {
        v->entry[layer] = -1;
        v->length[layer] = 0.0;
        v->note_gain[layer] = 0.0;
        v->shift[layer] = 0.0;
        return;
    }
    int other = -1;
    for (int k = 0; k < v->depth; k++)
        if (k != layer && v->entry[k] >= 0) {
            other = k;
            break;
        }
    double behind = other < 0 ? 0.0 : v->shift[other] / v->ratio[other];
    const Entry *n = &c->entries[e];
    v->entry[layer] = e;
    v->length[layer] = (double)n->frames;
    v->note_gain[layer] = n->gain;
    v->ratio[layer] = ratio * (double)n->sample_rate / c->rate;
    v->shift[layer] = behind * v->ratio[layer];
    if (n->loop_end != 0 && v->released_at >= NEVER) {
        v->loop_start[layer] = (double)n->loop_start;
        v->loop_length[layer] = (double)(n->loop_end - n->loop_start);
        v->loop_end[layer] = (double)n->loop_end;
    }
    if (v->depth < layer + 1) v->depth = layer + 1;
}

static void leave_loop(Voice *v, int layer) {
    double end = v->loop_end[layer];
    if (end == INFINITY) return;
    double progress = v->progress0 + v->bend * v->since_bend;
    double position = v->ratio[layer] * progress - v->shift[layer];
    if (position >= end) {
        double start = v->loop_start[layer], length = v->loop_length[layer];
        v->shift[layer] += floor((position - start) / length) * length;
    }
    v->loop_start[layer] = 0.0;
    v->loop_length[layer] = 1.0;
    v->loop_end[layer] = INFINITY;
}

static void order_remove(Voice *v, int layer) {
    int k = 0;
    for (int i = 0; i < v->norder; i++)
        if (v->order[i] != layer) v->order[k++] = v->order[i];
    v->norder = k;
}

static void morph(Core *c, Voice *v, const Record *r) {
    double target[LAYERS] = {0.0};
    double weight = r->note_b >= 0 ? r->weight : 0.0;
    int notes[2] = {r->note_a, r->note_b};
    double ratios[2] = {r->ratio_a, r->ratio_b}, gains[2] = {1.0 - weight, weight};
    for (int k = 0; k < 2; k++) {
        if (notes[k] < 0) continue;
        int layer = -1;
        for (int l = 0; l < v->depth; l++)
            if (v->entry[l] == notes[k]) {
                layer = l;
                break;
            }
        if (layer >= 0) {
            order_remove(v, layer);
        } else {
            if (v->depth < LAYERS) {
                layer = v->depth;
            } else {
                layer = v->order[0];
                order_remove(v, layer);
            }
            set_layer(c, v, layer, notes[k], ratios[k]);
        }
        v->order[v->norder++] = layer;
        target[layer] = gains[k];
    }
    /* Only a layer whose weight changes starts a new glide (mixer.Mixer._morph). */
    for (int l = 0; l < LAYERS; l++) {
        if (target[l] == v->gain_to[l]) continue;
        double t = v->since_glide[l] / c->glide_frames;
        if (t > 1.0) t = 1.0;
        v->gain_from[l] = v->gain_from[l] + (v->gain_to[l] - v->gain_from[l]) * t;
        v->gain_to[l] = target[l];
        v->since_glide[l] = 0.0;
    }
}

static void shrink_top(Core *c) {
    while (c->top && !c->voices[c->top - 1].active) c->top--;
}

static void apply(Core *c, const Record *r) {
    Voice *v = (r->op == OP_NOTE_ON || r->op == OP_RELEASE || r->op == OP_MORPH || r->op == OP_FADE)
                   ? &c->voices[r->slot]
                   : NULL;
    switch (r->op) {
    case OP_NOTE_ON: {
        v->serial = r->serial;
        v->channel = r->channel;
        v->bend = c->channel_bend[r->channel];
        for (int s = 0; s < 2; s++) {
            v->bus_from[s] = v->bus_to[s] = c->channel_gain[r->channel][s];
            v->bus_step[s] = 0.0f;
        }
        set_gain_kind(v);
        v->since_bus = c->glide_frames;
        v->active = 1;
        v->looped = c->entries[r->note_a].loop_end != 0;
        v->released_at = NEVER;
        for (int l = 0; l < LAYERS; l++) v->shift[l] = 0.0;
        for (int l = 0; l < v->depth; l++) set_layer(c, v, l, -1, 1.0);
        v->depth = 0;
        v->norder = 0;
        double weight = r->note_b >= 0 ? r->weight : 0.0;
        int notes[2] = {r->note_a, r->note_b};
        double ratios[2] = {r->ratio_a, r->ratio_b}, gains[2] = {1.0 - weight, weight};
        for (int l = 0; l < 2; l++) {
            if (notes[l] < 0) continue;
            set_layer(c, v, l, notes[l], ratios[l]);
            v->gain_from[l] = v->gain_to[l] = gains[l];
            v->order[v->norder++] = l;
        }
        v->progress0 = v->since_bend = v->age = 0.0;
        v->attack = r->attack;
        v->release = r->release;
        v->amp = r->amp;
        for (int l = 0; l < LAYERS; l++) v->since_glide[l] = 0.0;
        if (c->top < r->slot + 1) c->top = r->slot + 1;
        break;
    }
    case OP_RELEASE:
        if (v->active && v->serial == r->serial) {
            if (v->age < v->released_at) v->released_at = v->age;
            for (int l = 0; l < v->depth; l++) leave_loop(v, l);
        }
        break;
    case OP_MORPH:
        if (v->active && v->serial == r->serial) morph(c, v, r);
        break;
    case OP_BEND:
        c->channel_bend[r->channel] = r->bend;
        for (int s = 0; s < c->top; s++) {
            Voice *u = &c->voices[s];
            if (u->active && u->channel == r->channel) {
                u->progress0 += u->bend * u->since_bend;
                u->since_bend = 0.0;
                u->bend = r->bend;
            }
        }
        break;
    case OP_GAIN: {
        float gains[2] = {(float)r->left, (float)r->right};
        c->channel_gain[r->channel][0] = gains[0];
        c->channel_gain[r->channel][1] = gains[1];
        for (int s = 0; s < c->top; s++) {
            Voice *u = &c->voices[s];
            if (!u->active || u->channel != r->channel) continue;
            double t = u->since_bus / c->glide_frames;
            if (t > 1.0) t = 1.0;
            float rest = (float)(1.0 - t);
            for (int k = 0; k < 2; k++) {
                u->bus_from[k] = u->bus_to[k] - u->bus_step[k] * rest;
                u->bus_to[k] = gains[k];
            }
            set_gain_kind(u);
            for (int k = 0; k < 2; k++) u->bus_step[k] = u->bus_to[k] - u->bus_from[k];
            u->since_bus = 0.0;
        }
        break;
    }
    case OP_FADE:
        if (v->active && v->serial == r->serial) {
            double level = 1.0 - (v->age - v->released_at) / v->release;
            level = fmin(1.0, fmax(0.0, level));
            if (level > 0.0) {
                v->release = r->fade / level;
                v->released_at = v->age - r->fade / level * (1.0 - level);
            }
        }
        break;
    case OP_SILENCE:
        for (int s = 0; s < c->top; s++) {
            Voice *u = &c->voices[s];
            if (u->active && (r->channel == ALL_CHANNELS || r->channel == u->channel))
                end_voice(c, u);
        }
        shrink_top(c);
        break;
    case OP_LOAD: {
        Entry *n = &c->entries[r->entry];
        if (c->has_arena) {
            n->pcm = (const int16_t *)c->arena.buf + (int64_t)r->entry * c->entry_frames;
            n->capacity = c->entry_frames;
        }
        n->frames = r->frames;
        n->gain = r->gain;
        n->sample_rate = r->sample_rate;
        n->loop_start = r->loop_start;
        n->loop_end = r->loop_end;
        break;
    }
    }
}

/* -- mixing: mixer.Mixer._mix_chunk, _mix_bus, _master ------------------------------------- */

static void limit_block(Core *c, float *block, int n) {
    /* levels.Limiter.process, in place on [n, 2] frames. */
    int delay = c->delay;
    float *sig = c->signal, *mag = c->magnitude;
    memcpy(sig, c->delay_line, sizeof(float) * 2 * delay);
    memcpy(sig + 2 * delay, block, sizeof(float) * 2 * n);
    memcpy(c->delay_line, sig + 2 * n, sizeof(float) * 2 * delay);
    float loudest_all = 0.0f;
    for (int j = 0; j < delay + n; j++) {
        float a = fabsf(sig[2 * j]), b = fabsf(sig[2 * j + 1]);
        mag[j] = a >= b ? a : b;
        if (mag[j] > loudest_all) loudest_all = mag[j];
    }
    double gain = c->lim_gain;
    if (gain == 1.0 && loudest_all <= (float)c->limit) {
        memcpy(block, sig, sizeof(float) * 2 * n);
        return;
    }
    for (int start = 0; start < n;) {
        int end = start + delay < n ? start + delay : n;
        int length = end - start;
        float top = 0.0f;
        for (int j = start; j < end + delay; j++)
            if (mag[j] > top) top = mag[j];
        double loudest = (double)top;
        double bound = loudest > c->limit ? c->limit / loudest : 1.0;
        double rising = gain * pow(c->release_per_frame, (double)length);
        double target = rising < bound ? rising : bound;
        if (gain == 1.0 && target == 1.0) {
            memcpy(block + 2 * start, sig + 2 * start, sizeof(float) * 2 * length);
        } else {
            float step = (float)((target - gain) / length), base = (float)gain;
            for (int k = 0; k < length; k++) {
                float g = (float)(k + 1) * step + base;
                block[2 * (start + k)] = sig[2 * (start + k)] * g;
                block[2 * (start + k) + 1] = sig[2 * (start + k) + 1] * g;
            }
            c->limited_frames += length;
            ((double *)c->status.buf)[STATUS_LIMITED] = (double)c->limited_frames;
        }
        gain = target;
        start = end;
    }
    c->lim_gain = gain;
}

static void master(Core *c, float *out, int n) {
    float *fb = c->frame_bus;
    for (int i = 0; i < n; i++) {
        fb[2 * i] = c->bus0[i];
        fb[2 * i + 1] = c->bus1[i];
    }
    if (c->has_master) {
        if (c->master_gain != 1.0) {
            float g = (float)c->master_gain;
            for (int i = 0; i < 2 * n; i++) fb[i] *= g;
        }
        limit_block(c, fb, n);
    }
    if (c->channels == 2) {
        memcpy(out, fb, sizeof(float) * 2 * n);
    } else {
        for (int i = 0; i < n; i++) out[i] = (fb[2 * i] + fb[2 * i + 1]) * 0.5f;
    }
}

/* One layer's samples added into the voice's signal (``sig`` float32, [n]). Returns whether the
 * layer still has samples at its last frame. */
static int mix_layer(Core *c, Voice *v, int l, int looped, int n, float *sig, int compute) {
    const Entry *e = &c->entries[v->entry[l]];
    const int16_t *pcm = e->pcm;
    int64_t last = e->frames - 1;
    double ratio = v->ratio[l], shift = v->shift[l], length = v->length[l];
    double ls = v->loop_start[l], ll = v->loop_length[l], le = v->loop_end[l];
    double from = v->gain_from[l], gstep = v->gain_to[l] - v->gain_from[l];
    double note_gain = v->note_gain[l];
    int valid = 0;
    for (int i = compute ? 0 : n - 1; i < n; i++) { /* a silent layer: only its last frame */
        double fr = (v->since_bend + (double)i) * v->bend + v->progress0;
        double pos = fr * ratio;
        if (looped) {
            pos = pos - shift;
            if (pos >= le) pos = py_mod(pos - ls, ll) + ls;
        }
        valid = pos < length;
        if (!compute) continue;
        double fl = floor(pos);
        double frac = pos - fl;
        float s = 0.0f;
        if (valid && last >= 0) {
            int64_t i0 = (int64_t)fl, i1 = i0 + 1;
            i0 = i0 < 0 ? 0 : (i0 > last ? last : i0);
            i1 = i1 < 0 ? 0 : (i1 > last ? last : i1);
            float left = (float)pcm[i0], right = (float)pcm[i1];
            s = right - left;
            s = (float)((double)s * frac);
            s = s + left;
        }
        double g = ((v->since_glide[l] + (double)i) + 1.0) * c->inv_glide;
        if (g > 1.0) g = 1.0;
        double row = (g * gstep + from) * note_gain;
        sig[i] += (float)((double)s * row);
    }
    return valid;
}

static void mix_chunk(Core *c, float *out, int n) {
    int top = c->top;
    memset(c->bus0, 0, sizeof(float) * n);
    memset(c->bus1, 0, sizeof(float) * n);
    if (top == 0) {
        master(c, out, n);
        c->frames_mixed += n;
        c->voices_active = 0;
        ((double *)c->status.buf)[STATUS_VOICES] = 0.0;
        return;
    }
    int looped = 0, gliding = 0, balanced = 1, unity = 1;
    double least_bus = INFINITY;
    for (int s = 0; s < top; s++) {
        Voice *v = &c->voices[s];
        if (v->active) looped = looped || v->looped;
        if (v->since_bus < least_bus) least_bus = v->since_bus;
        balanced = balanced && v->balanced;
        unity = unity && v->unity;
    }
    gliding = least_bus + 1.0 < c->glide_frames;
    float *vs = c->voice_sig;
    int *sounding = c->sounding;
    for (int s = 0; s < top; s++) {
        Voice *v = &c->voices[s];
        sounding[s] = 0;
        if (!v->active) continue;
        for (int i = 0; i < n; i++) vs[i] = 0.0f;
        for (int l = 0; l < v->depth; l++) {
            if (v->entry[l] < 0) continue;
            int silent = v->gain_from[l] == 0.0 && v->gain_to[l] == 0.0;
            sounding[s] |= mix_layer(c, v, l, looped, n, vs, !silent);
        }
        for (int i = 0; i < n; i++) {
            double f = (v->age + (double)i) + 1.0;
            double env = f / v->attack;
            if (env > 1.0) env = 1.0;
            f = 1.0 - (f - v->released_at) / v->release;
            f = f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f);
            env = env * f * v->amp;
            vs[i] = (float)((double)vs[i] * env);
        }
        if (!gliding && balanced) {
            if (unity) {
                for (int i = 0; i < n; i++) c->bus0[i] += vs[i];
            } else {
                float g = v->bus_to[0];
                for (int i = 0; i < n; i++) c->bus0[i] += vs[i] * g;
            }
        } else if (gliding) {
            for (int i = 0; i < n; i++) {
                double g = ((v->since_bus + (double)i) + 1.0) * c->inv_glide;
                if (g > 1.0) g = 1.0;
                g = 1.0 - g;
                float left = v->bus_to[0] - (float)(g * (double)v->bus_step[0]);
                float right = v->bus_to[1] - (float)(g * (double)v->bus_step[1]);
                c->bus0[i] += left * vs[i];
                c->bus1[i] += right * vs[i];
            }
        } else {
            float left = v->bus_to[0], right = v->bus_to[1];
            for (int i = 0; i < n; i++) {
                c->bus0[i] += vs[i] * left;
                c->bus1[i] += vs[i] * right;
            }
        }
    }
    if (!gliding && balanced) memcpy(c->bus1, c->bus0, sizeof(float) * n);
    master(c, out, n);

    int active = 0;
    for (int s = 0; s < top; s++) {
        Voice *v = &c->voices[s];
        v->since_bend += n;
        v->age += n;
        for (int l = 0; l < LAYERS; l++) v->since_glide[l] += n;
        v->since_bus += n;
        if (!v->active) continue;
        int over = v->age - v->released_at >= v->release;
        if (over || !sounding[s])
            end_voice(c, v);
        else
            active++;
    }
    c->frames_mixed += n;
    shrink_top(c);
    c->voices_active = active;
    double *status = (double *)c->status.buf;
    status[STATUS_VOICES] = active;
    if (active > status[STATUS_PEAK]) status[STATUS_PEAK] = active;
}

/* -- the ring ------------------------------------------------------------------------------ */

static RingHeader *header(Core *c) { return (RingHeader *)c->ring.buf; }

static Record *record_at(Core *c, int64_t count) {
    char *base = (char *)c->ring.buf + sizeof(RingHeader);
    return (Record *)(base + (count % c->capacity) * (int64_t)sizeof(Record));
}

/* The next well-formed record before ``avail`` (bad ones are dropped and counted), or NULL. */
static const Record *head(Core *c, int64_t avail) {
    RingHeader *h = header(c);
    int64_t read = h->read;
    while (read < avail) {
        const Record *r = record_at(c, read);
        if (r->sequence == read + 1 && record_ok(c, r)) break;
        read++;
        __atomic_store_n(&h->dropped, h->dropped + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&h->read, read, __ATOMIC_RELEASE);
    }
    return read < avail ? record_at(c, read) : NULL;
}

static PyObject *Core_mix(Core *c, PyObject *args) {
    Py_buffer out;
    int frames;
    if (!PyArg_ParseTuple(args, "w*i", &out, &frames)) return NULL;
    if (frames < 0 || out.len < (Py_ssize_t)frames * c->channels * (Py_ssize_t)sizeof(float)) {
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "out holds fewer than frames × channels float32");
        return NULL;
    }
    RingHeader *h = header(c);
    int64_t avail = __atomic_load_n(&h->write, __ATOMIC_ACQUIRE);
    if (avail < h->read || avail - h->read > c->capacity) avail = h->read; /* a torn header */
    float *dst = (float *)out.buf;
    int done = 0;
    while (done < frames) {
        int64_t now = c->frames_mixed;
        const Record *r;
        while ((r = head(c, avail)) != NULL && r->frame <= now) {
            apply(c, r);
            __atomic_store_n(&h->read, h->read + 1, __ATOMIC_RELEASE);
        }
        int end = done + c->chunk < frames ? done + c->chunk : frames;
        if (r != NULL && done + (r->frame - now) < end) end = (int)(done + (r->frame - now));
        mix_chunk(c, dst + (Py_ssize_t)done * c->channels, end - done);
        done = end;
    }
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyObject *Core_attach(Core *c, PyObject *args) {
    int entry;
    PyObject *pcm;
    if (!PyArg_ParseTuple(args, "iO", &entry, &pcm)) return NULL;
    if (c->has_arena || entry < 0 || entry >= c->n_entries) {
        PyErr_SetString(PyExc_ValueError, "attach: no such entry (or the core has an arena)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(pcm, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    const char *format = view.format != NULL ? view.format : "";
    char native = PY_LITTLE_ENDIAN ? '<' : '>';
    if (*format == '@' || *format == '=' || *format == native) format++;
    if (view.itemsize != 2 || strcmp(format, "h") != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "attach: a C-contiguous int16 waveform");
        return NULL;
    }
    if (c->is_attached[entry]) PyBuffer_Release(&c->attached[entry]);
    c->attached[entry] = view;
    c->is_attached[entry] = 1;
    Entry *n = &c->entries[entry];
    n->pcm = (const int16_t *)view.buf;
    n->capacity = view.len / 2;
    n->frames = 0; /* until its LOAD record */
    Py_RETURN_NONE;
}

static void Core_dealloc(Core *c) {
    if (c->ring.obj) PyBuffer_Release(&c->ring);
    if (c->status.obj) PyBuffer_Release(&c->status);
    if (c->ended.obj) PyBuffer_Release(&c->ended);
    if (c->has_arena) PyBuffer_Release(&c->arena);
    if (c->is_attached)
        for (int e = 0; e < c->n_entries; e++)
            if (c->is_attached[e]) PyBuffer_Release(&c->attached[e]);
    PyMem_Free(c->attached);
    PyMem_Free(c->is_attached);
    PyMem_Free(c->entries);
    PyMem_Free(c->voices);
    PyMem_Free(c->signal);
    PyMem_Free(c->delay_line);
    PyMem_Free(c->magnitude);
    PyMem_Free(c->frame_bus);
    PyMem_Free(c->voice_sig);
    PyMem_Free(c->bus0);
    PyMem_Free(c->bus1);
    PyMem_Free(c->sounding);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static int Core_init(Core *c, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"ring",         "status",      "ended",      "arena",
                         "entries",      "entry_frames", "sample_rate", "slots",
                         "channels",     "chunk",        "glide_frames", "master_gain",
                         "limit",        "delay_frames", "release_per_frame", NULL};
    PyObject *arena, *master_gain;
    int entries, sample_rate, slots, channels, chunk, delay = 1;
    long long entry_frames;
    double glide_frames, limit = 1.0, release_per_frame = 1.0;
    if (c->voices != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Core is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "w*w*w*OiLiiiidO|did", kw, &c->ring, &c->status,
                                     &c->ended, &arena, &entries, &entry_frames, &sample_rate,
                                     &slots, &channels, &chunk, &glide_frames, &master_gain,
                                     &limit, &delay, &release_per_frame))
        return -1;
    if (entries < 1 || slots < 1 || chunk < 1 || delay < 1 || glide_frames < 1.0 ||
        sample_rate < 1 || (channels != 1 && channels != 2) ||
        c->ring.len < (Py_ssize_t)(sizeof(RingHeader) + sizeof(Record)) ||
        c->status.len < (Py_ssize_t)(STATUS_FIELDS_USED * sizeof(double)) ||
        c->ended.len < (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "Core: a size out of range");
        return -1;
    }
    if (arena != Py_None) {
        if (PyObject_GetBuffer(arena, &c->arena, PyBUF_C_CONTIGUOUS) < 0) return -1;
        c->has_arena = 1;
        if (entry_frames < 0 || c->arena.len < (Py_ssize_t)(2 * entries * entry_frames)) {
            PyErr_SetString(PyExc_ValueError, "Core: the arena is smaller than its entries");
            return -1;
        }
    }
    c->capacity = (c->ring.len - (Py_ssize_t)sizeof(RingHeader)) / (Py_ssize_t)sizeof(Record);
    c->n_entries = entries;
    c->entry_frames = entry_frames;
    c->slots = slots;
    c->channels = channels;
    c->chunk = chunk;
    c->rate = sample_rate;
    c->glide_frames = glide_frames;
    c->inv_glide = 1.0 / glide_frames;
    c->has_master = master_gain != Py_None;
    c->master_gain = c->has_master ? PyFloat_AsDouble(master_gain) : 1.0;
    if (PyErr_Occurred()) return -1;
    c->limit = limit;
    c->delay = delay;
    c->release_per_frame = release_per_frame;
    c->lim_gain = 1.0;
    c->entries = PyMem_Calloc(entries, sizeof(Entry));
    c->attached = PyMem_Calloc(entries, sizeof(Py_buffer));
    c->is_attached = PyMem_Calloc(entries, sizeof(int));
    c->voices = PyMem_Calloc(slots, sizeof(Voice));
    c->signal = PyMem_Calloc(2 * (delay + chunk), sizeof(float));
    c->delay_line = PyMem_Calloc(2 * delay, sizeof(float));
    c->magnitude = PyMem_Calloc(delay + chunk, sizeof(float));
    c->frame_bus = PyMem_Calloc(2 * chunk, sizeof(float));
    c->voice_sig = PyMem_Calloc(chunk, sizeof(float));
    c->bus0 = PyMem_Calloc(chunk, sizeof(float));
    c->bus1 = PyMem_Calloc(chunk, sizeof(float));
    c->sounding = PyMem_Calloc(slots, sizeof(int));
    if (!c->entries || !c->attached || !c->is_attached || !c->voices || !c->signal ||
        !c->delay_line || !c->magnitude || !c->frame_bus || !c->voice_sig || !c->bus0 || !c->bus1 ||
        !c->sounding) {
        PyErr_NoMemory();
        return -1;
    }
    for (int s = 0; s < slots; s++) {
        Voice *v = &c->voices[s];
        v->balanced = v->unity = 1;
        v->since_bus = glide_frames;
        v->bend = 1.0;
        v->attack = v->release = 1.0;
        v->released_at = NEVER;
        for (int l = 0; l < LAYERS; l++) {
            v->entry[l] = -1;
            v->ratio[l] = v->loop_length[l] = 1.0;
            v->loop_end[l] = INFINITY;
        }
        for (int k = 0; k < 2; k++) v->bus_from[k] = v->bus_to[k] = 1.0f;
    }
    for (int ch = 0; ch < MIDI_CHANNELS; ch++) {
        c->channel_bend[ch] = 1.0;
        c->channel_gain[ch][0] = c->channel_gain[ch][1] = 1.0f;
    }
    return 0;
}

static PyObject *Core_get_frames_mixed(Core *c, void *closure) {
    return PyLong_FromLongLong(c->frames_mixed);
}

static PyObject *Core_get_voices_active(Core *c, void *closure) {
    return PyLong_FromLong(c->voices_active);
}

static PyObject *Core_get_limited_frames(Core *c, void *closure) {
    return PyLong_FromLongLong(c->limited_frames);
}

static PyObject *Core_get_limiter_gain(Core *c, void *closure) {
    return PyFloat_FromDouble(c->lim_gain);
}

static PyMethodDef Core_methods[] = {
    {"mix", (PyCFunction)Core_mix, METH_VARARGS,
     "mix(out, frames): apply the ring's due commands and fill out[:frames] (float32)."},
    {"attach", (PyCFunction)Core_attach, METH_VARARGS,
     "attach(entry, pcm): the entry reads this int16 waveform (a core without an arena)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Core_getset[] = {
    {"frames_mixed", (getter)Core_get_frames_mixed, NULL, "frames mixed so far", NULL},
    {"voices_active", (getter)Core_get_voices_active, NULL, "voices in the last chunk", NULL},
    {"limited_frames", (getter)Core_get_limited_frames, NULL,
     "frames the limiter turned down (levels.Limiter.limited_frames)", NULL},
    {"limiter_gain", (getter)Core_get_limiter_gain, NULL,
     "the limiter's gain on the last frame out (levels.Limiter.gain)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "gansynth_instrument.live._mixcore.Core",
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The mixer state and its one-call-per-block mix (see the module source).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Core_init,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
};

/* (name, offset, size) of every field of a record: tests compare them with protocol.RECORD. */
#define FIELD(name) Py_BuildValue("(snn)", #name, (Py_ssize_t)offsetof(Record, name), \
                                  (Py_ssize_t)sizeof(((Record *)0)->name))

static PyObject *record_layout(void) {
    return PyTuple_Pack(
        25, FIELD(frame), FIELD(op), FIELD(slot), FIELD(serial), FIELD(note_a), FIELD(note_b),
        FIELD(channel), FIELD(entry), FIELD(ratio_a), FIELD(ratio_b), FIELD(weight), FIELD(amp),
        FIELD(attack), FIELD(release), FIELD(left), FIELD(right), FIELD(bend), FIELD(fade),
        FIELD(frames), FIELD(gain), FIELD(pitch), FIELD(sample_rate), FIELD(loop_start),
        FIELD(loop_end), FIELD(sequence));
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mixcore",
                                    "The compiled mixer core (see _mixcore.c).", -1, NULL};

PyMODINIT_FUNC PyInit__mixcore(void) {
    if (PyType_Ready(&CoreType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0) return NULL;
    PyModule_AddObject(m, "RECORD_FIELDS", record_layout());
    PyModule_AddIntConstant(m, "RECORD_SIZE", sizeof(Record));
    PyModule_AddObject(m, "HEADER_OFFSETS",
                       Py_BuildValue("(nnn)", offsetof(RingHeader, write),
                                     offsetof(RingHeader, read), offsetof(RingHeader, dropped)));
    PyModule_AddIntConstant(m, "HEADER_SIZE", sizeof(RingHeader));
    PyModule_AddObject(m, "STATUS_FIELDS", Py_BuildValue("(iiii)", STATUS_ENDED, STATUS_VOICES,
                                                         STATUS_PEAK, STATUS_LIMITED));
    PyModule_AddIntConstant(m, "LAYERS", LAYERS);
    return m;
}
