# The job flowrun runs this script for, read from the JSON file FLOWRUN_JOB names.
#
#   job <- flowrun.job()
#   job$input[[1]], job$input$reads, job$output[[1]], job$params$factor,
#   job$wildcards$sample, job$threads, job$resources$mem_mb, job$rule, job$label
#
# flowrun loads this file through R_PROFILE_USER (and then the user's own ~/.Rprofile), so a
# script calls flowrun.job() without sourcing anything. Base R only: JSON is parsed here.

flowrun.parse_json <- function(text) {
  chars <- strsplit(text, "")[[1]]
  i <- 1L
  n <- length(chars)
  skip <- function() {
    while (i <= n && chars[i] %in% c(" ", "\n", "\r", "\t")) i <<- i + 1L
  }
  value <- function() {
    skip()
    ch <- chars[i]
    if (ch == "{") {
      i <<- i + 1L
      out <- list()
      skip()
      if (chars[i] == "}") { i <<- i + 1L; return(out) }
      repeat {
        skip()
        key <- string()
        skip()
        i <<- i + 1L  # the colon
        out[key] <- list(value())
        skip()
        sep <- chars[i]
        i <<- i + 1L
        if (sep == "}") return(out)
      }
    } else if (ch == "[") {
      i <<- i + 1L
      out <- list()
      skip()
      if (chars[i] == "]") { i <<- i + 1L; return(out) }
      repeat {
        out[[length(out) + 1L]] <- value()
        skip()
        sep <- chars[i]
        i <<- i + 1L
        if (sep == "]") return(out)
      }
    } else if (ch == "\"") {
      return(string())
    } else if (ch == "t") { i <<- i + 4L; return(TRUE)
    } else if (ch == "f") { i <<- i + 5L; return(FALSE)
    } else if (ch == "n") { i <<- i + 4L; return(NULL)
    } else {
      start <- i
      while (i <= n && grepl("[-+0-9.eE]", chars[i])) i <<- i + 1L
      return(as.numeric(paste(chars[start:(i - 1L)], collapse = "")))
    }
  }
  string <- function() {
    i <<- i + 1L  # the opening quote
    out <- character()
    while (chars[i] != "\"") {
      if (chars[i] == "\\") {
        i <<- i + 1L
        esc <- chars[i]
        if (esc == "u") {
          out <- c(out, intToUtf8(strtoi(paste(chars[(i + 1L):(i + 4L)], collapse = ""), 16L)))
          i <<- i + 4L
        } else {
          out <- c(out, switch(esc, n = "\n", t = "\t", r = "\r", b = "\b", f = "\f", esc))
        }
      } else {
        out <- c(out, chars[i])
      }
      i <<- i + 1L
    }
    i <<- i + 1L
    paste(out, collapse = "")
  }
  value()
}

# Paths as a list in declaration order, each named by its name in the rule (or ""), so
# files[[1]] is the first path and files$reads the first path named reads.
flowrun.files <- function(paths, named) {
  paths <- as.character(unlist(paths))
  tags <- rep("", length(paths))
  for (name in names(named)) {
    for (p in unlist(named[[name]])) {
      at <- which(paths == p & tags == "")[1]
      if (!is.na(at)) tags[at] <- name
    }
  }
  out <- as.list(paths)
  names(out) <- tags
  out
}

flowrun.job <- function(path = Sys.getenv("FLOWRUN_JOB")) {
  if (!nzchar(path)) {
    stop("FLOWRUN_JOB is not set: flowrun sets it when it runs this script; to run it by hand, ",
         "set it with eval \"$(flowrun --job-env LABEL WORKFLOW)\"")
  }
  data <- flowrun.parse_json(paste(readLines(path, encoding = "UTF-8", warn = FALSE), collapse = "\n"))
  for (kind in c("input", "output", "log")) {
    data[[kind]] <- flowrun.files(data[[kind]], data$named[[kind]])
  }
  data$named <- NULL
  data
}

local({
  own <- Sys.getenv("FLOWRUN_USER_RPROFILE", path.expand("~/.Rprofile"))
  if (file.exists(own)) sys.source(own, envir = globalenv())
})
