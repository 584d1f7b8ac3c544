// accelgen native harness for ${top} (sim/harness.v, filled in by sim/native.py; Verilog-2005)
//
// The template's slots, filled by harness_verilog from the design's port list and gen/isa.py:
// the top's name, the stream widths (IW, OW), the watchdog's STALL, a reg or wire per port and
// the port connections, the identity and counter CSR reads, and the control/status/commands
// CSR offsets. The program and result file formats are described in sim/native.py.
`timescale 1ns/1ps
module accelgen_tb;
  localparam IW = ${iw}, OW = ${ow}, STALL = ${stall}, QUIET = 64;
${decls}

  ${top} dut (
${conns}
  );

  reg [1024*8-1:0] progname, resname, wavename;
  integer fd, fo, r, in_thr, out_thr, seed;
  reg [31:0] lfsr_in, lfsr_out;
  reg [63:0] cycle = 0, start = 0, last_io = 0, bound = 0;
  reg running = 0;
  integer prog = 0, src_seq = 0, src_taken = 0, n_frames = 0, frames_left = 0, beats_left = 0;
  integer n_out = 0, out_frames = 0, out_base = 0, in_beats = 0, out_beats = 0;
  integer n_beats = 0, in_base = 0;
  reg prog_done = 0, quiet = 0;
  reg [31:0] w32, v, v2;
  reg [IW-1:0] beat;

  always #5 clk = ~clk;

  // the watchdog and the cycle count
  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (running && cycle - start > bound) begin
      $fwrite(fo, "\n");
      if (cycle - last_io >= STALL)
        $fwrite(fo, "deadlock %0d %0d %0d %0d %0d\n", prog, cycle - start, cycle - last_io,
                in_beats, out_beats);
      else
        $fwrite(fo, "timeout %0d %0d %0d %0d %0d\n", prog, cycle - start, cycle - last_io,
                in_beats, out_beats);
      $fflush(fo);
      $finish;
    end
  end

  // every beat of the current program sent and every output frame received (prog_done), or
  // every beat sent and no stream beat for QUIET cycles (quiet: a refused stream, or one that
  // ended inside a frame, sends fewer frames); registered, so the program loop below waits on
  // one event instead of waking every cycle
  always @(posedge clk) begin
    prog_done <= in_beats - in_base >= n_beats && out_frames - out_base >= n_out;
    quiet <= in_beats - in_base >= n_beats && cycle - last_io >= QUIET;
  end

  // seeded pauses: a Galois LFSR per stream, a pause when its low 16 bits fall under the threshold
  always @(posedge clk) begin
    lfsr_in <= {1'b0, lfsr_in[31:1]} ^ (lfsr_in[0] ? 32'h80200003 : 32'h0);
    lfsr_out <= {1'b0, lfsr_out[31:1]} ^ (lfsr_out[0] ? 32'h80200003 : 32'h0);
  end

  // the stream source: frames of the current program, a beat per cycle unless paused
  always @(posedge clk) begin
    if (s_axis__tvalid && s_axis__tready) begin
      in_beats = in_beats + 1;
      last_io <= cycle;
    end
    if (!(s_axis__tvalid && !s_axis__tready)) begin
      if (src_taken != src_seq) begin
        src_taken = src_seq;
        frames_left = n_frames;
      end
      if (beats_left == 0 && frames_left != 0) begin
        r = $fread(w32, fd);
        beats_left = w32;
        frames_left = frames_left - 1;
      end
      if (beats_left != 0 && lfsr_in[15:0] >= in_thr) begin
        r = $fread(beat, fd);
        s_axis__tdata <= beat;
        s_axis__tlast <= beats_left == 1;
        s_axis__tvalid <= 1;
        beats_left = beats_left - 1;
      end else
        s_axis__tvalid <= 0;
    end
  end

  // the result sink: every beat to the result file
  always @(posedge clk) begin
    if (m_axis__tvalid && m_axis__tready) begin
      $fwrite(fo, "o %0d %h\n", m_axis__tlast, m_axis__tdata);
      out_beats = out_beats + 1;
      last_io <= cycle;
      if (m_axis__tlast)
        out_frames = out_frames + 1;
    end
    m_axis__tready <= !rst && lfsr_out[15:0] >= out_thr;
  end

  // the CSR master drives at the falling edge and samples settled values there, so a handshake
  // happens at the next rising edge whatever order the simulator resumes processes in
  task csr_read(input [7:0] addr, output [31:0] data);
    begin
      @(negedge clk);
      s_axil__araddr = addr;
      s_axil__arvalid = 1;
      #1;
      while (!s_axil__arready) @(negedge clk);
      @(negedge clk);
      s_axil__arvalid = 0;
      s_axil__rready = 1;
      #1;
      while (!s_axil__rvalid) @(negedge clk);
      data = s_axil__rdata;
      @(negedge clk);
      s_axil__rready = 0;
    end
  endtask

  task csr_write(input [7:0] addr, input [31:0] data);
    begin
      @(negedge clk);
      s_axil__awaddr = addr;
      s_axil__wdata = data;
      s_axil__awvalid = 1;
      s_axil__wvalid = 1;
      #1;
      while (!(s_axil__awready && s_axil__wready)) @(negedge clk);
      @(negedge clk);
      s_axil__awvalid = 0;
      s_axil__wvalid = 0;
      s_axil__bready = 1;
      #1;
      while (!s_axil__bvalid) @(negedge clk);
      @(negedge clk);
      s_axil__bready = 0;
    end
  endtask

  initial begin
    if (!$value$plusargs("program=%s", progname) || !$value$plusargs("result=%s", resname)) begin
      $display("accelgen_tb: give +program=FILE +result=FILE");
      $finish;
    end
    if (!$value$plusargs("in_pause=%d", in_thr)) in_thr = 0;
    if (!$value$plusargs("out_pause=%d", out_thr)) out_thr = 0;
    if (!$value$plusargs("seed=%d", seed)) seed = 0;
    lfsr_in = 32'h1 ^ (seed * 32'h9e3779b9);
    if (lfsr_in == 0) lfsr_in = 1;
    lfsr_out = 32'h2 ^ (seed * 32'h85ebca6b);
    if (lfsr_out == 0) lfsr_out = 2;
`ifdef ACCELGEN_WAVES
    if ($value$plusargs("waves=%s", wavename)) begin
      $dumpfile(wavename);
      $dumpvars(0, accelgen_tb);
    end
`endif
    fd = $fopen(progname, "rb");
    fo = $fopen(resname, "w");
    if (fd == 0 || fo == 0) begin
      $display("accelgen_tb: cannot open the program or the result file");
      $finish;
    end
    @(negedge clk);
    rst = 1;
    repeat (4) @(negedge clk);
    rst = 0;
    repeat (2) @(negedge clk);
    start = cycle;
    bound = 100000;       // for the identity reads
    running = 1;
    $fwrite(fo, "id");
${id_reads}
    $fwrite(fo, "\n");
    r = $fread(w32, fd);
    while (r == 4 && w32 != 32'hffffffff) begin
      n_frames = w32;
      r = $fread(w32, fd);
      n_out = w32;
      r = $fread(w32, fd);
      bound = w32;
      r = $fread(w32, fd);
      n_beats = w32;
      start = cycle;
      last_io = cycle;
      csr_write(8'h${control}, 32'h3);          // clear the counters and the error flag
      out_base = out_frames;
      in_base = in_beats;
      src_seq = src_seq + 1;
      @(negedge clk);
      @(negedge clk);                              // prog_done and quiet have seen the bases
      wait (prog_done || quiet);
      // until idle, or starved (status bit 2: waiting inside a frame, so the stream ended
      // inside one); unless refused (bit 1) or cut, every output frame must then come (the
      // watchdog ends a run that waits for one in vain)
      csr_read(8'h${status}, v);
      while (v[0] && !v[2]) csr_read(8'h${status}, v);
      if (!v[1] && !v[2]) wait (prog_done);
      $fwrite(fo, "p %0d %0d %0d", prog, cycle - start, v);
      if (v[1] || v[2]) begin    // soft reset: drop the rest; the executor's COMPUTEs finish
        csr_write(8'h${control}, 32'h2);
        csr_read(8'h${status}, v2);
        while (v2[0]) csr_read(8'h${status}, v2);
      end
      csr_read(8'h${commands}, v);
      $fwrite(fo, " %0d", v);
${cnt_reads}
      $fwrite(fo, "\n");
      $fflush(fo);
      prog = prog + 1;
      r = $fread(w32, fd);
    end
    $fwrite(fo, "end\n");
    $fclose(fo);
    $finish;
  end
endmodule
